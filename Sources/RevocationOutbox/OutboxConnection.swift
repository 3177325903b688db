import Logging
import LogoutCore
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// One connection to the outbox's database, opened on first use and again after any error.
///
/// A connection of our own rather than `PostgresClient`'s pool: the pool's reconnect backoff
/// grows to a minute and its circuit breaker fails waiting queries, while a revocation outbox
/// wants to be back within a second of the database. Every use is bounded: past its deadline
/// the connection is closed, which ends the statement, and the next use reconnects.
actor OutboxConnection {
    private let configuration: PostgresConnection.Configuration
    private let deadline: Duration
    private let logger: Logger
    private var current: PostgresConnection?
    private var openedCount = 0

    init(address: OutboxAddress, connectTimeout: Duration, deadline: Duration, logger: Logger) throws(CrocanteError) {
        var configuration: PostgresConnection.Configuration
        switch address.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS
            switch address.tls {
            case .disable:
                tls = .disable
            case .verifyFull:
                do {
                    tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                } catch {
                    throw .invalidSetting("CROCANTE_OUTBOX", reason: "cannot load the system trust store: \(error)")
                }
            }
            configuration = .init(
                host: host, port: port, username: address.username, password: address.password,
                database: address.database, tls: tls)
        case .unixSocket:
            configuration = .init(
                unixSocketPath: address.endpoint.socketPath!, username: address.username, password: address.password,
                database: address.database)
        }
        configuration.options.connectTimeout = TimeAmount(connectTimeout)
        self.configuration = configuration
        self.deadline = deadline
        self.logger = logger
    }

    /// Whether a connection is open now.
    var isOpen: Bool { current.map { !$0.isClosed } ?? false }

    /// Runs `body` on the connection, connecting first when there is none. Any error closes
    /// the connection (a half-read answer leaves it in no state to reuse).
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        if let current, !current.isClosed {
            connection = current
        } else {
            openedCount += 1
            let (configuration, id, logger) = (configuration, openedCount, logger)
            connection = try await Self.bounded(
                deadline, onTimeout: {},
                { try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger) },
                // A connection that arrives after its deadline is nobody's: closed, not leaked.
                abandoned: { try? await $0.close() })
            current = connection
        }
        do {
            return try await Self.bounded(deadline, onTimeout: { _ = connection.close() as EventLoopFuture<Void> }, { try await body(connection) })
        } catch {
            current = nil
            try? await connection.close()
            throw error
        }
    }

    /// Closes the connection, if any.
    func close() async {
        if let current { try? await current.close() }
        current = nil
    }

    /// `body`'s result, or `OutboxTimeout` once `deadline` passes, whichever comes first. The
    /// caller never waits past the deadline, even for a `body` that ignores cancellation and
    /// closing (a connect stuck in its start-up exchange): `onTimeout` runs (closing the
    /// connection ends a statement), `body` is cancelled, and a result it delivers later goes to
    /// `abandoned`.
    private static func bounded<T: Sendable>(
        _ deadline: Duration, onTimeout: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () async throws -> T,
        abandoned: @escaping @Sendable (T) async -> Void = { _ in }
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let race = DeadlineRace()
            race.start(
                timer: Task {
                    try? await Task.sleep(for: deadline)
                    guard !Task.isCancelled, race.settle() else { return }
                    onTimeout()
                    race.cancelWork()
                    continuation.resume(throwing: OutboxTimeout(deadline: deadline))
                },
                work: Task {
                    let result: Result<T, any Error>
                    do { result = .success(try await body()) } catch { result = .failure(error) }
                    if race.settle() {
                        race.cancelTimer()
                        continuation.resume(with: result)
                    } else if case .success(let value) = result {
                        await abandoned(value)
                    }
                })
        }
    }
}

/// Who of a call and its deadline timer comes first: only that one resumes the caller.
private final class DeadlineRace: Sendable {
    private let state = Mutex<(settled: Bool, timer: Task<Void, Never>?, work: Task<Void, Never>?)>((false, nil, nil))

    func start(timer: Task<Void, Never>, work: Task<Void, Never>) {
        state.withLock { $0.timer = timer; $0.work = work }
    }

    /// True for the first caller only.
    func settle() -> Bool {
        state.withLock { state in
            defer { state.settled = true }
            return !state.settled
        }
    }

    func cancelWork() { state.withLock { $0.work }?.cancel() }
    func cancelTimer() { state.withLock { $0.timer }?.cancel() }
}

/// A statement or connection attempt that outlived its deadline.
struct OutboxTimeout: Error, CustomStringConvertible {
    let deadline: Duration
    var description: String { "no answer within \(deadline.wholeMilliseconds) ms" }
}
