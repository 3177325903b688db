import LogoutCore
import Revocation

/// What a claimed row becomes after one backend call: the same rules as the in-process queue
/// (`RevocationQueue.StateMachine`), applied to a row of the shared table.
enum OutboxDisposition: Sendable, Equatable {
    /// A final verdict: the row is done, its sealed token erased; it stays as a dedup marker
    /// until the dedup window has passed.
    case done(Verdict, status: Int?)
    /// No verdict yet: the lease is released and the next attempt is due after `delay` ms.
    case retry(delay: Int64, reason: String)

    enum Verdict: String, Sendable, Equatable {
        case revoked, rejected
        /// Given up: the next attempt would start at or after the row's `give_up_at`.
        case expired
    }

    /// - Parameters:
    ///   - attempts: attempts made, this one included.
    ///   - giveUpAt: the token's `exp`, else logout + maximum age (wall milliseconds).
    ///   - now: wall milliseconds.
    static func after(
        _ outcome: RevocationOutcome, attempts: Int, giveUpAt: UnixMilliseconds, now: UnixMilliseconds,
        settings: RevocationSettings, random: inout some RandomNumberGenerator
    ) -> OutboxDisposition {
        switch outcome {
        case .revoked(let status):
            return .done(.revoked, status: status)
        case .rejected(let status):
            return .done(.rejected, status: status)
        case .stored:
            // Only the outbox itself answers this; a backend client never does. No verdict.
            return after(.failed(.connection("no verdict")), attempts: attempts, giveUpAt: giveUpAt, now: now, settings: settings, random: &random)
        case .failed(let failure, let retryAfter):
            let delay = settings.retryDelay(attempt: attempts, retryAfter: retryAfter, random: &random)
            if now + delay >= giveUpAt { return .done(.expired, status: nil) }
            return .retry(delay: delay, reason: failure.description)
        }
    }
}
