import Logging
import LogoutCore

/// The log lines of one revocation's fate, written alike by the queue and by the fleet's outbox
/// (RevocationOutbox), so the README's log table holds for both. A token appears only as its
/// fingerprint, computed only for lines the level lets through.
package enum RevocationLogLines {
    package static func revoked(_ token: AccessToken, status: Int, logger: Logger) {
        logger.info("revocation revoked", metadata: ["token": "\(token.fingerprint)", "status": "\(status)"])
    }

    package static func rejected(_ token: AccessToken, status: Int, logger: Logger) {
        logger.notice("revocation rejected by the backend", metadata: ["token": "\(token.fingerprint)", "status": "\(status)"])
    }

    /// `byExp`: the token's own `exp` passed (dead anyway); else the maximum age (maybe alive).
    package static func expired(_ token: AccessToken, attempts: Int, byExp: Bool, logger: Logger) {
        if byExp {
            logger.notice(
                "revocation given up: the token has expired", metadata: ["token": "\(token.fingerprint)", "attempts": "\(attempts)"])
        } else {
            logger.error(
                "revocation given up after the maximum age: the token may still be alive",
                metadata: ["token": "\(token.fingerprint)", "attempts": "\(attempts)"])
        }
    }

    package static func attemptFailed(_ token: AccessToken, reason: String, attempt: Int, retryIn: Int64, logger: Logger) {
        logger.debug(
            "revocation attempt failed, will retry",
            metadata: ["token": "\(token.fingerprint)", "reason": "\(reason)", "attempt": "\(attempt)", "retry_in_ms": "\(retryIn)"])
    }
}
