import AsyncHTTPClient
import NIOSSL

/// A short, specific reason for a failed TLS connection to the backend, from the error
/// async-http-client reports (a NIOSSL error carrying BoringSSL's error stack).
///
/// BoringSSL reports a certificate it does not accept as `CERTIFICATE_VERIFY_FAILED` whatever
/// the cause; ``needsDiagnosis`` says so, and ``TLSProbe`` tells an expired certificate from an
/// unknown issuer. The reasons hold only error names, never request bytes or the token.
public enum TLSFailure: String, Sendable, CaseIterable {
    case unknownCA = "unknown CA"
    case expired = "certificate expired"
    case notYetValid = "certificate not yet valid"
    /// Verification failed and no probe could say why (e.g. through a proxy).
    case untrusted = "certificate not trusted (unknown CA or expired)"
    case hostnameMismatch = "hostname mismatch"
    case clientCertificateRequired = "client certificate required"
    case clientCertificateRefused = "client certificate refused by the backend"
    case handshakeRefused = "handshake refused"
    case notTLS = "the backend does not speak TLS on this port"
    case handshakeTimeout = "handshake timeout"

    /// The reason for `error`, or nil when it is no TLS failure.
    public init?(classifying error: any Error) {
        if let error = error as? HTTPClientError, error == .tlsHandshakeTimeout {
            self = .handshakeTimeout
            return
        }
        let text = String(reflecting: error)
        if error is NIOSSLExtraError, text.contains("failedToValidateHostname") {
            self = .hostnameMismatch
            return
        }
        // A handshake error is a NIOSSLError; an alert read after the client's side of a TLS 1.3
        // handshake (the server refusing the client certificate) is a bare BoringSSLError.
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        // A connection closed without close_notify is a connection failure, handshake or not.
        if let error = error as? NIOSSLError, error == .uncleanShutdown { return nil }
        self = Self.classify(text: text)
    }

    private static func classify(text: String) -> TLSFailure {
        // BoringSSL's reason codes, as ERR_error_string_n prints them.
        let table: [(code: String, failure: TLSFailure)] = [
            ("CERTIFICATE_VERIFY_FAILED", .untrusted),
            ("CERTIFICATE_REQUIRED", .clientCertificateRequired),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", .clientCertificateRequired),
            ("TLSV1_ALERT_UNKNOWN_CA", .clientCertificateRefused),
            ("SSLV3_ALERT_BAD_CERTIFICATE", .clientCertificateRefused),
            ("SSLV3_ALERT_CERTIFICATE_EXPIRED", .clientCertificateRefused),
            ("SSLV3_ALERT_CERTIFICATE_UNKNOWN", .clientCertificateRefused),
            ("TLSV1_ALERT_DECRYPT_ERROR", .clientCertificateRefused),
            ("WRONG_VERSION_NUMBER", .notTLS),
            ("HTTP_REQUEST", .notTLS),
        ]
        for (code, failure) in table where text.contains(code) { return failure }
        return .handshakeRefused
    }

    /// Whether a probe can make the reason more specific.
    public var needsDiagnosis: Bool { self == .untrusted }

    /// How the reason is logged: `reason=tls: unknown CA`.
    public var description: String { rawValue }
}
