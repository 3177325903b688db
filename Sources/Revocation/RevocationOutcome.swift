import LogoutCore

/// What became of one revocation call.
public enum RevocationOutcome: Sendable, Equatable {
    /// The backend answered 2xx: the token is dead.
    case revoked(status: Int)
    /// The backend answered a final 4xx: it refuses the token (already dead, unknown, malformed).
    case rejected(status: Int)
    /// No verdict: the token may still be alive, and the call is tried again later, after
    /// `retryAfter` (milliseconds, from the backend's `Retry-After`) when the backend said so.
    case failed(Failure, retryAfter: Int64? = nil)
    /// Written to the fleet's shared outbox, which delivers it from there: final for this
    /// queue, though the backend has not answered yet.
    case stored

    public enum Failure: Sendable, Equatable, CustomStringConvertible {
        /// 408, 425, 429, 5xx, or any status outside 2xx and 4xx.
        case status(Int)
        /// The connect or overall deadline passed.
        case timeout
        /// Refused, reset or closed before an answer. The reason never holds the token.
        case connection(String)
        /// The TLS handshake with the backend failed: certificate, host name, client certificate.
        case tls(TLSFailure)

        public var description: String {
            switch self {
            case .status(let status): return "status \(status)"
            case .timeout: return "timeout"
            case .connection(let reason): return "connection: \(reason)"
            case .tls(let failure): return "tls: \(failure.rawValue)"
            }
        }
    }

    /// Classifies an HTTP status the backend answered with. 408 (Request Timeout), 425 (Too
    /// Early) and 429 (Too Many Requests) say "not now", not "never": they are retried.
    public init(status: Int, retryAfter: Int64? = nil) {
        switch status {
        case 200..<300: self = .revoked(status: status)
        case 408, 425, 429: self = .failed(.status(status), retryAfter: retryAfter)
        case 400..<500: self = .rejected(status: status)
        default: self = .failed(.status(status), retryAfter: retryAfter)
        }
    }
}

/// Tells the backend that a token must die. One call per token; the answer comes back through
/// `completion`, on any thread, exactly once.
public protocol BackendNotifier: Sendable {
    func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void)
    /// The same, knowing when the user logged out: what the queue calls. The fleet's outbox
    /// stores the instant, so that its retries stop at the same maximum age; a plain backend
    /// client ignores it.
    func revoke(
        _ token: AccessToken, loggedOutAt: UnixMilliseconds, completion: @escaping @Sendable (RevocationOutcome) -> Void)
}

extension BackendNotifier {
    public func revoke(
        _ token: AccessToken, loggedOutAt: UnixMilliseconds, completion: @escaping @Sendable (RevocationOutcome) -> Void
    ) {
        revoke(token, completion: completion)
    }
}
