import LogoutCore
import Revocation

/// The settings of an `https://` backend and of the egress proxy (issue 11).
extension Settings {
    static let backendCAFile = Setting<String?>.optionalPath(
        SettingDeclaration(
            name: "CROCANTE_BACKEND_CA_FILE", flag: "backend-ca-file", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "absolute path of a PEM bundle; `https://` only", defaultText: "unset (the system store)",
            help: "Trust only these roots for the backend (a private CA, or the backend's issuer to pin it) instead of the system store, `/etc/ssl/certs/ca-certificates.crt` on Debian.",
            example: nil))

    static let backendClientCertificateFile = Setting<String?>.optionalPath(
        SettingDeclaration(
            name: "CROCANTE_BACKEND_CLIENT_CERT_FILE", flag: "backend-client-cert-file", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "absolute path of a PEM certificate (chain, leaf first); `https://` only",
            defaultText: "unset (no client certificate)",
            help: "Client certificate shown to the backend (mTLS); needs the key below.", example: nil))

    /// A secret: the key itself, from the variable, `_FILE` or the credential, as the session secret.
    static let backendClientKey = SettingDeclaration(
        name: "CROCANTE_BACKEND_CLIENT_KEY", flag: nil, acceptsNextPublicSpelling: false, credential: "backend_client_key",
        accepted: "PEM private key matching the client certificate; `https://` only", defaultText: "unset",
        help: "The client certificate's key; best as the credential or `_FILE`, never in clear in the environment file.",
        example: nil)

    static let backendProxy = Setting<BackendProxy?>(
        declaration: SettingDeclaration(
            name: "CROCANTE_BACKEND_PROXY", flag: "backend-proxy", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "`http://host:port`, no `user:pw@`", defaultText: "unset (direct)",
            help: "Egress proxy for backend calls: `CONNECT` tunnels an `https://` backend, an `http://` one is forwarded.",
            example: nil),
        defaultValue: { _ in .some(nil) },
        parse: { text in
            do throws(CrocanteError) {
                return .success(try BackendProxy(parsing: text, setting: "CROCANTE_BACKEND_PROXY"))
            } catch {
                return .failure(.init(reason: error.reason))
            }
        },
        render: { $0?.description ?? "(unset: direct)" })
}

extension Setting where Value == String? {
    /// An optional absolute path, shown as it is.
    static func optionalPath(_ declaration: SettingDeclaration) -> Setting {
        Setting(
            declaration: declaration, defaultValue: { _ in .some(nil) },
            parse: { path in
                path.hasPrefix("/") && !path.utf8.contains(0) ? .success(path) : .failure(.init(reason: "is not an absolute path"))
            },
            render: { $0 ?? "(unset)" })
    }
}
