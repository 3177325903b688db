import LogoutCore

/// The egress proxy backend calls go through (`CROCANTE_BACKEND_PROXY`): an `http://host:port`
/// proxy, tunnelled with `CONNECT` for an `https://` backend (async-http-client does both).
public struct BackendProxy: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    /// Accepts `http://host:port` with an optional final `/`: the port is required (proxies have
    /// no conventional one), and no user:password@ (it would sit in the environment and logs).
    public init(parsing text: String, setting: String) throws(CrocanteError) {
        let gateway = try BackendURL.gateway(text, setting: setting)
        guard gateway.scheme == "http" else {
            throw .invalidSetting(setting, reason: "must be an http:// proxy (https is tunnelled through it with CONNECT)")
        }
        guard let givenPort = gateway.port else { throw .invalidSetting(setting, reason: "names no port (http://host:port)") }
        guard gateway.path.isEmpty || gateway.path == "/" else { throw .invalidSetting(setting, reason: "must have no path") }
        host = gateway.host
        port = givenPort
    }

    public var description: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }
}
