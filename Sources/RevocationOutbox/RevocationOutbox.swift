import Dispatch
import Logging
import LogoutCore
import PostgresNIO
import Revocation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The fleet's pending revocations, in one PostgreSQL table every host shares (issue 19).
///
/// Two halves, each a loop on its own connection:
/// - storing: as the `BackendNotifier` of the host's `RevocationQueue`, it writes each token
///   (sealed) to the table and answers `.stored`. The queue keeps its spool record until then,
///   and retries with its backoff while the database is down, so a logout never waits for
///   PostgreSQL and the spool buffers what the database cannot take yet.
/// - delivering: it claims due rows of any host (`FOR UPDATE SKIP LOCKED`, with a lease longer
///   than a backend call can take), calls the backend, and writes the verdict or the next due
///   time back, fenced on its claim. A host killed mid-call leaves leases that run out; a
///   survivor claims those rows then. No row has two live leases, so no token is sent by two
///   hosts at once.
public final class RevocationOutbox: BackendNotifier {
    public struct Settings: Sendable {
        public var address: OutboxAddress
        /// Dedup window, backoff, maximum age and concurrency: the queue's, applied to the table.
        public var revocation: RevocationSettings
        /// How long a claim holds a row: longer than a backend call can take.
        public var lease: Duration
        /// How often the table is asked for due rows when nothing woke the loop sooner.
        public var pollInterval: Duration = .milliseconds(500)
        /// The longest a connection attempt or statement may take before the connection is dropped.
        public var connectTimeout: Duration = .seconds(2)
        public var statementTimeout: Duration = .seconds(5)
        /// Written as `claimed_by`, for whoever reads the table.
        public var hostName: String

        public init(address: OutboxAddress, revocation: RevocationSettings, lease: Duration, hostName: String) {
            self.address = address
            self.revocation = revocation
            self.lease = lease
            self.hostName = hostName
        }
    }

    /// What refused the outbox at start.
    public enum StartFailure: Error, Sendable {
        /// The server answered and said no: authentication, a missing database, privileges, a
        /// newer schema. Configuration, not an outage.
        case refused(String)
        /// No answer: down, unreachable, or too slow. The service starts anyway.
        case unreachable(String)
    }

    private struct Waiting: Sendable {
        var row: OutboxRow
        var completion: @Sendable (RevocationOutcome) -> Void
    }

    private struct State {
        var toStore: [Waiting] = []
        var results: [OutboxResult] = []
        var statistics = OutboxStatistics()
        var stopping = false
        /// When the last error was logged, so an outage logs once a second at most.
        var lastErrorLog: ContinuousClock.Instant?
    }

    public let settings: Settings
    /// Rows written per statement at most, and so the hand-offs the queue should keep in flight:
    /// one commit (one fsync on the database) per batch, not per backend-call slot.
    public static let storeBatch = 512
    private let seal: OutboxSeal
    private let backend: any BackendNotifier
    private let logger: Logger
    private let state = Mutex(State())
    private let storeWakeup = Wakeup()
    private let deliverWakeup = Wakeup()
    private let storeConnection: OutboxConnection
    private let deliverConnection: OutboxConnection
    private let loops = Mutex<[Task<Void, Never>]>([])

    public init(settings: Settings, secrets: [SessionSecret], backend: any BackendNotifier, logger: Logger) throws(CrocanteError) {
        self.settings = settings
        seal = OutboxSeal(secrets: secrets)
        self.backend = backend
        self.logger = logger
        storeConnection = try OutboxConnection(
            address: settings.address, connectTimeout: settings.connectTimeout, deadline: settings.statementTimeout,
            logger: logger)
        deliverConnection = try OutboxConnection(
            address: settings.address, connectTimeout: settings.connectTimeout, deadline: settings.statementTimeout,
            logger: logger)
    }

    // MARK: Start and stop

    /// Connects once and creates or migrates the schema.
    public func prepare() async throws(StartFailure) {
        do {
            let versions = try await deliverConnection.run { [logger] connection in
                try await OutboxStatements.migrate(connection, logger: logger)
            }
            if versions.from != versions.to {
                logger.notice(
                    "outbox schema migrated", metadata: ["from": "\(versions.from)", "to": "\(versions.to)"])
            }
        } catch {
            if error is OutboxSchemaTooNew || Self.isRefusal(error) { throw .refused(Self.reason(error)) }
            throw .unreachable(Self.reason(error))
        }
    }

    /// Starts both loops. Migrates first when ``prepare()`` could not reach the database.
    public func start(prepared: Bool) {
        let store = Task { await self.storeLoop() }
        let deliver = Task {
            if !prepared { await self.migrateWhenReachable() }
            await self.deliverLoop()
        }
        loops.withLock { $0 = [store, deliver] }
    }

    /// Stops claiming, waits up to `timeout` for the calls in flight and writes their verdicts
    /// back. Rows still held keep their lease until it runs out, then another host claims them:
    /// releasing them early could let a second host call while our call still runs.
    public func stop(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        state.withLock { $0.stopping = true }
        storeWakeup.signal()
        deliverWakeup.signal()
        for loop in loops.withLock({ $0 }) { await loop.value }
        while ContinuousClock.now < deadline, state.withLock({ $0.statistics.inFlight > 0 }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let results = state.withLock { state in
            defer { state.results = [] }
            return state.results
        }
        if !results.isEmpty {
            do {
                try await deliverConnection.run { [logger] in try await OutboxStatements.complete(results, on: $0, logger: logger) }
            } catch {
                noteError("outbox: verdicts not written at shutdown; the rows are delivered again after their lease", error)
            }
        }
        // Whatever waits to be stored fails: the queue hands it over to the spool.
        for waiting in state.withLock({ state in defer { state.toStore = [] }; return state.toStore }) {
            waiting.completion(.failed(.connection("outbox stopping")))
        }
        await storeConnection.close()
        await deliverConnection.close()
    }

    public var statistics: OutboxStatistics {
        state.withLock { $0.statistics }
    }

    // MARK: Storing

    public func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void) {
        revoke(token, loggedOutAt: Self.wallNow(), completion: completion)
    }

    /// Seals `token` and queues it for the next write; `completion` gets `.stored` once the row
    /// is committed, or a failure the queue retries.
    public func revoke(
        _ token: AccessToken, loggedOutAt: UnixMilliseconds, completion: @escaping @Sendable (RevocationOutcome) -> Void
    ) {
        let key = seal.rowKey(for: token)
        let expiresAt = TokenExpiry.of(token)
        let row = OutboxRow(
            key: key, sealed: seal.seal(token, rowKey: key), loggedOutAt: loggedOutAt,
            giveUpAt: expiresAt ?? loggedOutAt + settings.revocation.maxAge.wholeMilliseconds, boundedByExp: expiresAt != nil)
        let refused = state.withLock { state in
            if state.stopping { return true }
            state.toStore.append(Waiting(row: row, completion: completion))
            return false
        }
        if refused { return completion(.failed(.connection("outbox stopping"))) }
        storeWakeup.signal()
    }

    /// Writes what waits, a batch per round trip, until stopped.
    private func storeLoop() async {
        var failures = 0
        while true {
            await storeWakeup.wait(timeout: .seconds(1))
            while true {
                let (batch, stopping) = state.withLock { state in
                    let batch = Array(state.toStore.prefix(Self.storeBatch))
                    state.toStore.removeFirst(batch.count)
                    return (batch, state.stopping)
                }
                if stopping {
                    for waiting in batch { waiting.completion(.failed(.connection("outbox stopping"))) }
                    return
                }
                if batch.isEmpty { break }
                // One token twice in one statement would make ON CONFLICT refuse the whole batch.
                var seen = Set<[UInt8]>()
                let rows = batch.map(\.row).filter { seen.insert($0.key).inserted }
                do {
                    let dedupWindow = settings.revocation.dedupWindow.wholeMilliseconds
                    let written = try await storeConnection.run { [logger] connection in
                        try await OutboxStatements.insert(rows, dedupWindow: dedupWindow, on: connection, logger: logger)
                    }
                    failures = 0
                    state.withLock { $0.statistics.stored += written }
                    for waiting in batch { waiting.completion(.stored) }
                    deliverWakeup.signal()
                } catch {
                    failures += 1
                    state.withLock { $0.statistics.storeErrors += 1; $0.statistics.errors += 1 }
                    noteError("outbox: revocations not stored, the queue retries them (the spool keeps them meanwhile)", error)
                    let reason = "outbox: " + Self.reason(error)
                    for waiting in batch { waiting.completion(.failed(.connection(reason))) }
                }
            }
        }
    }

    // MARK: Delivering

    private func migrateWhenReachable() async {
        var failures = 0
        while !state.withLock({ $0.stopping }) {
            do {
                try await prepare()
                return
            } catch {
                failures += 1
                if case .refused(let reason) = error {
                    logger.critical("outbox refused: revocations are stored nowhere but the spool", metadata: ["reason": "\(reason)"])
                }
                await deliverWakeup.wait(timeout: Self.backoff(failures))
            }
        }
    }

    /// Writes verdicts back, expires and purges once a second, claims what it has room for, waits.
    private func deliverLoop() async {
        var failures = 0
        var lastHousekeeping: ContinuousClock.Instant?
        while !state.withLock({ $0.stopping }) {
            do {
                try await writeResults()
                if lastHousekeeping.map({ ContinuousClock.now - $0 >= .seconds(1) }) ?? true {
                    try await housekeeping()
                    lastHousekeeping = .now
                }
                try await claimAndCall()
                failures = 0
                state.withLock { $0.statistics.connected = true }
                await deliverWakeup.wait(timeout: settings.pollInterval)
            } catch {
                failures += 1
                state.withLock { $0.statistics.errors += 1; $0.statistics.connected = false }
                noteError("outbox: the database does not answer, delivery resumes when it does", error)
                await deliverWakeup.wait(timeout: Self.backoff(failures))
            }
        }
    }

    private func writeResults() async throws {
        let results = state.withLock { state in
            defer { state.results = [] }
            return state.results
        }
        guard !results.isEmpty else { return }
        do {
            try await deliverConnection.run { [logger] in try await OutboxStatements.complete(results, on: $0, logger: logger) }
        } catch {
            // Kept for the next round; if their leases run out first, another host calls again.
            state.withLock { $0.results = results + $0.results }
            throw error
        }
    }

    private func housekeeping() async throws {
        let dedupWindow = settings.revocation.dedupWindow.wholeMilliseconds
        let (expired, depth) = try await deliverConnection.run { [logger] connection in
            let expired = try await OutboxStatements.expire(on: connection, logger: logger)
            try await OutboxStatements.purge(dedupWindow: dedupWindow, on: connection, logger: logger)
            return (expired, try await OutboxStatements.depth(on: connection, logger: logger))
        }
        state.withLock { state in
            state.statistics.expired += expired.count
            state.statistics.depth = depth.rows
            state.statistics.oldestPendingAgeSeconds = depth.oldestAgeSeconds
        }
        let byMaximumAge = expired.filter { !$0 }.count
        if byMaximumAge > 0 {
            logger.error(
                "revocations given up after the maximum age: their tokens may still be alive",
                metadata: ["revocations": "\(byMaximumAge)"])
        }
        if expired.count > byMaximumAge {
            logger.notice("revocations given up: their tokens have expired", metadata: ["revocations": "\(expired.count - byMaximumAge)"])
        }
    }

    private func claimAndCall() async throws {
        let room = settings.revocation.concurrency - state.withLock { $0.statistics.inFlight }
        guard room > 0 else { return }
        let claim = Int64.random(in: 1...Int64.max)
        let lease = settings.lease.wholeMilliseconds
        let started = ContinuousClock.now
        let rows = try await deliverConnection.run { [settings, logger] connection in
            try await OutboxStatements.claim(
                limit: room, claim: claim, claimer: settings.hostName, lease: lease, on: connection, logger: logger)
        }
        let elapsed = ContinuousClock.now - started
        state.withLock { state in
            state.statistics.claimLatency.record(elapsed)
            state.statistics.claimed += rows.count
        }
        for row in rows { call(row) }
    }

    private func call(_ row: ClaimedRow) {
        guard let token = seal.open(row.sealed, rowKey: row.key) else {
            // Sealed under a secret this host no longer has: a host that has it may deliver it.
            let retry = OutboxResult(
                key: row.key, claim: row.claim,
                disposition: .retry(delay: settings.revocation.retryMax.wholeMilliseconds, reason: "unreadable here"))
            state.withLock { $0.statistics.unreadable += 1; $0.results.append(retry) }
            return
        }
        state.withLock { $0.statistics.inFlight += 1 }
        let started = ContinuousClock.now
        backend.revoke(token) { [self] outcome in
            var random = SystemRandomNumberGenerator()
            let disposition = OutboxDisposition.after(
                outcome, attempts: row.attempts, giveUpAt: row.giveUpAt, now: Self.wallNow(),
                settings: settings.revocation, random: &random)
            let elapsed = ContinuousClock.now - started
            state.withLock { state in
                state.statistics.inFlight -= 1
                state.statistics.backendLatency.record(elapsed)
                switch disposition {
                case .done(.revoked, _): state.statistics.revoked += 1
                case .done(.rejected, _): state.statistics.rejected += 1
                case .done(.expired, _): state.statistics.failed += 1; state.statistics.expired += 1
                case .retry: state.statistics.failed += 1; state.statistics.retried += 1
                }
                state.results.append(OutboxResult(key: row.key, claim: row.claim, disposition: disposition))
            }
            log(disposition, token: token, attempts: row.attempts, boundedByExp: row.boundedByExp)
            deliverWakeup.signal()
        }
    }

    private func log(_ disposition: OutboxDisposition, token: AccessToken, attempts: Int, boundedByExp: Bool) {
        switch disposition {
        case .done(.revoked, let status):
            logger.info("revocation revoked", metadata: ["token": "\(token.fingerprint)", "status": "\(status ?? 0)"])
        case .done(.rejected, let status):
            logger.notice(
                "revocation rejected by the backend", metadata: ["token": "\(token.fingerprint)", "status": "\(status ?? 0)"])
        case .done(.expired, _):
            if boundedByExp {
                logger.notice(
                    "revocation given up: the token has expired",
                    metadata: ["token": "\(token.fingerprint)", "attempts": "\(attempts)"])
            } else {
                logger.error(
                    "revocation given up after the maximum age: the token may still be alive",
                    metadata: ["token": "\(token.fingerprint)", "attempts": "\(attempts)"])
            }
        case .retry(let delay, let reason):
            logger.debug(
                "revocation attempt failed, will retry",
                metadata: [
                    "token": "\(token.fingerprint)", "reason": "\(reason)", "attempt": "\(attempts)", "retry_in_ms": "\(delay)",
                ])
        }
    }

    // MARK: Errors

    /// Logs `message` with the error's reason, at most once a second.
    private func noteError(_ message: String, _ error: any Error) {
        let now = ContinuousClock.now
        let due = state.withLock { state in
            guard state.lastErrorLog.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            state.lastErrorLog = now
            return true
        }
        if due { logger.error("\(message)", metadata: ["reason": "\(Self.reason(error))"]) }
    }

    /// 100 ms doubling to 2 s: back within two seconds of the database.
    private static func backoff(_ failures: Int) -> Duration {
        .milliseconds(min(2_000, 100 << min(failures - 1, 5)))
    }

    /// The server said no: a configuration error (SQLSTATE classes 28 authorization, 3D no such
    /// database, 42 privileges or syntax), or a password it asked for and was not given.
    static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        if error.code == .authMechanismRequiresPassword || error.code == .unsupportedAuthMechanism { return true }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("28") || state.hasPrefix("3D") || state.hasPrefix("42")
    }

    /// A short reason for logs: PSQLError's own description hides everything on purpose.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    static func wallNow() -> UnixMilliseconds {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        return Int64(wall.tv_sec) * 1_000 + Int64(wall.tv_nsec) / 1_000_000
    }
}

/// Wakes one waiting loop: a signal sent while nobody waits is kept for the next wait.
final class Wakeup: Sendable {
    private let state = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal, or after `timeout`.
    func wait(timeout: Duration) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.signal() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.signalled {
                    state.signalled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }
}
