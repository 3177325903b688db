import FastCGI
import FoundationEssentials
import LogoutCore
import Revocation
import Synchronization

/// Connects the FastCGI server to the router: answers each request, counts logouts, and hands
/// every opened session's token to the revocation queue before the response is finished.
struct LogoutResponder: FastCGIResponder {
    let router: Router
    let revocations: RevocationQueue
    /// The durable spool behind the queue, for its counters; nil in memory-only mode.
    let spool: (any RevocationJournal)?
    let workers: WorkerCounters
    let workerCount: Int
    let counters = LogoutCounters()
    private let startedAt = Date()
    private let startedInstant = ContinuousClock.now

    /// Logouts answered and sessions found, for the status page.
    final class LogoutCounters: Sendable {
        let logouts = Atomic<Int>(0)
        let sessionsOpened = Atomic<Int>(0)
    }

    func respond(to request: FastCGIRequest) -> [UInt8] {
        switch router.route(request) {
        case .logout(let decision):
            if decision.isLogout { counters.logouts.add(1, ordering: .relaxed) }
            if let token = decision.tokenToRevoke {
                counters.sessionsOpened.add(1, ordering: .relaxed)
                // Recorded (the spool's write(2)) before the response is finished; never waits for the backend.
                revocations.enqueue(token)
            }
            return decision.response.bytes
        case .status(let format):
            return statusReport().response(format).bytes
        case .ping:
            return LogoutResponse.pong.bytes
        case .notFound:
            return LogoutResponse.notFound.bytes
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
            logouts: counters.logouts.load(ordering: .relaxed),
            sessionsOpened: counters.sessionsOpened.load(ordering: .relaxed),
            revocations: revocations.counts,
            queueCapacity: revocations.capacity,
            spool: spool?.statistics)
    }
}
