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

    struct Waiting: Sendable {
        var row: OutboxRow
        var completion: @Sendable (RevocationOutcome) -> Void
    }

    struct State {
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
    let seal: OutboxSeal
    let backend: any BackendNotifier
    let logger: Logger
    let state = Mutex(State())
    let storeWakeup = Wakeup()
    let deliverWakeup = Wakeup()
    let storeConnection: OutboxConnection
    let deliverConnection: OutboxConnection
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

    // MARK: Errors

    /// Logs `message` with the error's reason, at most once a second.
    func noteError(_ message: String, _ error: any Error) {
        let now = ContinuousClock.now
        let due = state.withLock { state in
            guard state.lastErrorLog.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            state.lastErrorLog = now
            return true
        }
        if due { logger.error("\(message)", metadata: ["reason": "\(Self.reason(error))"]) }
    }

    /// 100 ms doubling to 2 s: back within two seconds of the database.
    static func backoff(_ failures: Int) -> Duration {
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
