import FastCGI
import FoundationEssentials
import Logging
import LogoutCore
import Revocation
import RevocationOutbox
import Synchronization

/// Connects the FastCGI server to the router: answers each request, counts logouts, and hands
/// every opened session's token to the revocation queue before the response is finished.
struct LogoutResponder: FastCGIResponder {
    let router: Router
    let revocations: RevocationQueue
    /// The durable spool behind the queue, for its counters; nil in memory-only mode.
    let spool: (any RevocationJournal)?
    /// The fleet's outbox, for its counters; nil without `CROCANTE_OUTBOX`.
    let outbox: RevocationOutbox?
    let workers: WorkerCounters
    /// The workers' progress, parked by the test-only wedge route.
    let heartbeats: WorkerHeartbeats
    let workerCount: Int
    let refusals: RefusalCounters
    let logger: Logger
    let counters = LogoutCounters()
    /// Session cookies that did not open, by reason, and the wrong-secret warning.
    let mismatches: Mismatches
    private let startedAt = Date()
    private let startedInstant = ContinuousClock.now

    /// The mismatch detector, shared by the workers.
    final class Mismatches: Sendable {
        let detector: Mutex<SessionMismatchDetector>

        init(share: Double) {
            detector = Mutex(SessionMismatchDetector(share: share))
        }
    }

    /// Logouts answered and sessions found, for the status page.
    final class LogoutCounters: Sendable {
        let logouts = Atomic<Int>(0)
        let sessionsOpened = Atomic<Int>(0)
    }

    func respond(to request: FastCGIRequest) -> [UInt8] {
        switch router.route(request) {
        case .logout(let decision):
            if decision.isLogout { counters.logouts.add(1, ordering: .relaxed) }
            if !decision.tokensToRevoke.isEmpty { counters.sessionsOpened.add(1, ordering: .relaxed) }
            // Every session that opened: a tossed cookie must not hide the real one. Each is
            // recorded (the spool's write(2)) before the response is finished; never waits for the backend.
            for token in decision.tokensToRevoke { revocations.enqueue(token) }
            if !decision.tokensToRevoke.isEmpty || !decision.failures.isEmpty { count(decision) }
            return decision.response.bytes
        case .status(let format):
            return statusReport().response(format).bytes
        case .ping:
            return LogoutResponse.pong.bytes
        case .wedge:
            logger.warning("test wedge: every worker parks for good; only the watchdog gets the responder back")
            heartbeats.parkAll()
            return LogoutResponse.pong.bytes
        case .notFound:
            return LogoutResponse.notFound.bytes
        }
    }

    /// Feeds the mismatch detector; its warning names the likely cause, never a cookie.
    private func count(_ decision: LogoutEndpoint.Decision) {
        let now = ContinuousClock.now
        let warning = mismatches.detector.withLock { detector in
            var warning: SessionMismatchDetector.Warning?
            for token in decision.tokensToRevoke { warning = detector.record(.success(token), at: now) ?? warning }
            for failure in decision.failures { warning = detector.record(.failure(failure), at: now) ?? warning }
            return warning
        }
        if let warning {
            logger.warning(
                "\(warning.message)",
                metadata: ["cookies_in_window": "\(warning.present)", "tag_mismatches": "\(warning.tagMismatches)"])
        }
    }

    func statusReport() -> StatusReport {
        StatusReport(
            startTime: Int(startedAt.timeIntervalSince1970),
            uptimeSeconds: Int((ContinuousClock.now - startedInstant).components.seconds),
            acceptedRequests: workers.accepted.load(ordering: .relaxed),
            activeWorkers: workers.active.load(ordering: .relaxed),
            totalWorkers: workerCount,
            maxActiveWorkers: workers.maxActive.load(ordering: .relaxed),
            keptRequests: workers.keptRequests.load(ordering: .relaxed),
            keptIdle: workers.keptIdle.load(ordering: .relaxed),
            keptExpired: workers.keptExpired.load(ordering: .relaxed),
            keptEvicted: workers.keptEvicted.load(ordering: .relaxed),
            logouts: counters.logouts.load(ordering: .relaxed),
            sessionsOpened: counters.sessionsOpened.load(ordering: .relaxed),
            revocations: outbox.map { revocations.counts.delivered(by: $0.statistics) } ?? revocations.counts,
            queueCapacity: revocations.capacity,
            spool: spool?.statistics,
            outbox: outbox?.statistics,
            peersRefused: refusals.peersRefused.load(ordering: .relaxed),
            invalidRequests: refusals.invalidRequests.load(ordering: .relaxed),
            unknownRoles: refusals.unknownRoles.load(ordering: .relaxed),
            timedOut: refusals.timedOut.load(ordering: .relaxed),
            closedEarly: refusals.closedEarly.load(ordering: .relaxed),
            cookies: mismatches.detector.withLock { $0.counts })
    }
}
