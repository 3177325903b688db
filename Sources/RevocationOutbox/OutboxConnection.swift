import Logging
import LogoutCore
import NIOCore
import NIOSSL
import PostgresNIO

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
            connection = try await bounded(nil) {
                try await PostgresConnection.connect(configuration: self.configuration, id: self.openedCount, logger: self.logger)
            }
            current = connection
        }
        do {
            return try await bounded(connection) { try await body(connection) }
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

    /// `body`, or `OutboxTimeout` once the deadline passes; then `connection` is closed so
    /// that `body` ends too.
    private func bounded<T: Sendable>(
        _ connection: PostgresConnection?, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let deadline = self.deadline
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let value = result { return value }
                try? await connection?.close()
                throw OutboxTimeout(deadline: deadline)
            }
            throw OutboxTimeout(deadline: deadline)
        }
    }
}

/// A statement or connection attempt that outlived its deadline.
struct OutboxTimeout: Error, CustomStringConvertible {
    let deadline: Duration
    var description: String { "no answer within \(deadline.wholeMilliseconds) ms" }
}
