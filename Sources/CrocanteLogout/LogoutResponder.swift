import FastCGI
import FoundationEssentials
import LogoutCore
import Revocation
import Synchronization

/// Connects the FastCGI server to the logout decision, the revocation queue and the
/// status and ping paths.
struct LogoutResponder: FastCGIResponder {
    let endpoint: LogoutEndpoint
    let revocations: RevocationQueue
    let statusPath: String
    let pingPath: String
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

    init(endpoint: LogoutEndpoint, revocations: RevocationQueue, configuration: Configuration, workers: WorkerCounters) {
        self.endpoint = endpoint
        self.revocations = revocations
        self.statusPath = configuration.statusPath
        self.pingPath = configuration.pingPath
        self.workers = workers
        self.workerCount = configuration.workers
    }

    static let pong = LogoutResponse(status: "200 OK", contentType: "text/plain", body: "pong")

    func respond(to request: FastCGIRequest) -> (response: [UInt8], followUp: AccessToken?) {
        if request.path == statusPath { return (statusResponse(query: request.query).bytes, nil) }
        if request.path == pingPath { return (Self.pong.bytes, nil) }
        let decision = endpoint.decide(method: request.method, path: request.path, cookieHeader: request.cookieHeader)
        if decision.kind == .logout { counters.logouts.add(1, ordering: .relaxed) }
        if decision.tokenToRevoke != nil { counters.sessionsOpened.add(1, ordering: .relaxed) }
        return (decision.response.bytes, decision.tokenToRevoke)
    }

    /// Runs after the response has left: queueing is O(1) and never waits for the backend.
    func afterResponse(_ token: AccessToken) {
        revocations.enqueue(token)
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
            queueCapacity: revocations.capacity)
    }

    private func statusResponse(query: String) -> LogoutResponse {
        let report = statusReport()
        if query.split(separator: "&").contains("format=prometheus") {
            return LogoutResponse(status: "200 OK", contentType: "text/plain; version=0.0.4", body: report.prometheus)
        }
        return LogoutResponse(status: "200 OK", body: report.json)
    }
}
