import Foundation
import LogoutCore
import NIOSSL
import X509

/// How the responder trusts an `https://` backend and proves itself to it: the roots it trusts
/// (the system store, or only those of `CROCANTE_BACKEND_CA_FILE`) and an optional client
/// certificate with its key (mTLS). Loaded and checked once, at start-up.
///
/// Verification of the certificate and the host name is always on; TLS 1.2 is the minimum.
public struct BackendTLS: Sendable {
    /// Where a setting's PEM came from, for errors and `check-config`: the setting's name and a
    /// path, or a credential name. Never the PEM itself.
    public struct Source: Sendable, Equatable {
        public var setting: String
        public var origin: String
        public init(setting: String, origin: String) {
            self.setting = setting
            self.origin = origin
        }
    }

    /// A PEM text and where it came from.
    public struct PEM: Sendable {
        public var text: String
        public var source: Source
        public init(text: String, source: Source) {
            self.text = text
            self.source = source
        }
    }

    /// The roots trusted: nil is the system store.
    public let trustRoots: [NIOSSLCertificate]?
    public let caSource: Source?
    /// The client certificate chain, leaf first; empty without mTLS.
    public let clientChain: [NIOSSLCertificate]
    public let clientCertificateSource: Source?
    public let clientKey: NIOSSLPrivateKey?
    public let clientKeySource: Source?

    /// Debian's system store (the `ca-certificates` package), which NIOSSL's default trust reads.
    public static let systemStore = "/etc/ssl/certs/ca-certificates.crt"

    /// Parses and cross-checks the PEMs: each must hold what it names, a CA file at least one
    /// certificate, the key must match the certificate, and a certificate comes with its key.
    /// - Throws: `CrocanteError.invalidSetting` naming the setting and the reason, never PEM bytes.
    public init(ca: PEM?, clientCertificate: PEM?, clientKey: PEM?) throws(CrocanteError) {
        if let ca {
            let roots = try Self.certificates(ca)
            trustRoots = roots
        } else {
            trustRoots = nil
        }
        caSource = ca?.source
        switch (clientCertificate, clientKey) {
        case (nil, nil):
            clientChain = []
            self.clientKey = nil
        case (let certificate?, nil):
            throw .invalidSetting(certificate.source.setting, reason: "a client certificate needs its key (CROCANTE_BACKEND_CLIENT_KEY_FILE or the credential backend_client_key)")
        case (nil, let key?):
            throw .invalidSetting(key.source.setting, reason: "a client key needs its certificate (CROCANTE_BACKEND_CLIENT_CERT_FILE)")
        case (let certificate?, let key?):
            clientChain = try Self.certificates(certificate)
            do {
                self.clientKey = try NIOSSLPrivateKey(bytes: Array(key.text.utf8), format: .pem)
            } catch {
                // The reason is NIOSSL's (no key bytes in it); the origin names the file.
                throw .invalidSetting(key.source.setting, reason: "\(key.source.origin) holds no usable PEM private key")
            }
        }
        clientCertificateSource = clientCertificate?.source
        clientKeySource = clientKey?.source
        // BoringSSL checks the key against the certificate when a context is built with both.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            if let source = clientKeySource {
                throw .invalidSetting(source.setting, reason: "the key does not match the client certificate in \(clientCertificateSource?.origin ?? "?")")
            }
            throw .invalidSetting(caSource?.setting ?? "API_GATEWAY", reason: "the TLS settings are refused (\(error))")
        }
    }

    /// The certificates of a PEM bundle; at least one.
    private static func certificates(_ pem: PEM) throws(CrocanteError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.text.utf8))
        } catch {
            throw .invalidSetting(pem.source.setting, reason: "\(pem.source.origin) is not valid PEM")
        }
        guard !certificates.isEmpty else {
            throw .invalidSetting(pem.source.setting, reason: "\(pem.source.origin) holds no certificate")
        }
        return certificates
    }

    /// The client TLS configuration async-http-client uses for every connection.
    public var configuration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let trustRoots { configuration.trustRoots = .certificates(trustRoots) }
        configuration.certificateChain = clientChain.map { .certificate($0) }
        configuration.privateKey = clientKey.map { .privateKey($0) }
        return configuration
    }

    /// Lines for `check-config`: the trusted roots' subjects, the client certificate's subject and expiry;
    /// never key material. A client certificate expiring within 30 days of `now` adds a warning.
    public func summary(now: Date) -> (lines: [String], warnings: [String]) {
        var lines: [String] = []
        var warnings: [String] = []
        if let caSource, let trustRoots {
            let subjects = trustRoots.map { Self.subject($0) }.joined(separator: "; ")
            lines.append("backend trust=only \(caSource.origin): \(subjects)")
        } else {
            let present = FileManager.default.fileExists(atPath: Self.systemStore)
            lines.append("backend trust=the system store, \(Self.systemStore)\(present ? "" : " (missing: install ca-certificates)")")
        }
        if let clientCertificateSource, let leaf = clientChain.first {
            let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
            lines.append(
                "backend client certificate=\(clientCertificateSource.origin): subject \(Self.subject(leaf)), expires \(Self.iso(expiry))")
            let left = expiry.timeIntervalSince(now)
            if left < 0 {
                warnings.append("the client certificate in \(clientCertificateSource.origin) expired on \(Self.iso(expiry)): the backend will refuse it")
            } else if left < 30 * 86_400 {
                warnings.append("the client certificate in \(clientCertificateSource.origin) expires on \(Self.iso(expiry)), in \(Int(left / 86_400)) days")
            }
        } else {
            lines.append("backend client certificate=(none)")
        }
        return (lines, warnings)
    }

    /// The subject as RFC 4514 text (swift-certificates: NIOSSLCertificate shows only a common name, internally).
    static func subject(_ certificate: NIOSSLCertificate) -> String {
        if let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) {
            return parsed.subject.description
        }
        return "(unreadable subject)"
    }

    private static func iso(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
