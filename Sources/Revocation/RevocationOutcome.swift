import LogoutCore

/// What became of one revocation call.
public enum RevocationOutcome: Sendable, Equatable {
    /// The backend answered 2xx: the token is dead.
    case revoked(status: Int)
    /// The backend answered 4xx: it refuses the token (already dead, unknown, malformed).
    case rejected(status: Int)
    /// No verdict: the token may still be alive.
    case failed(Failure)

    public enum Failure: Sendable, Equatable, CustomStringConvertible {
        /// 5xx, or any status outside 2xx and 4xx.
        case status(Int)
        /// The connect or overall deadline passed.
        case timeout
        /// Refused, reset or closed before an answer. The reason never holds the token.
        case connection(String)

        public var description: String {
            switch self {
            case .status(let status): return "status \(status)"
            case .timeout: return "timeout"
            case .connection(let reason): return "connection: \(reason)"
            }
        }
    }

    /// Classifies an HTTP status the backend answered with.
    public init(status: Int) {
        switch status {
        case 200..<300: self = .revoked(status: status)
        case 400..<500: self = .rejected(status: status)
        default: self = .failed(.status(status))
        }
    }
}

/// Tells the backend that a token must die. One call per token; the answer comes back through
/// `completion`, on any thread, exactly once.
public protocol BackendNotifier: Sendable {
    func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void)
}

