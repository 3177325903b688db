import Dispatch
import Glibc
import FastCGI
import Logging
import LogoutCore
import Revocation

/// The running service: socket, workers, revocation queue and backend client.
final class Application {
    let configuration: Configuration
    let logger: Logger
    let server: FastCGIServer<LogoutResponder>
    let responder: LogoutResponder
    let revocations: RevocationQueue
    let notifier: HTTPBackendNotifier
    let socket: ListeningSocket
    let environment: [String: String]

    init(
        configuration: Configuration, environment: [String: String], logger: Logger, socket: ListeningSocket,
        server: FastCGIServer<LogoutResponder>, responder: LogoutResponder, revocations: RevocationQueue,
        notifier: HTTPBackendNotifier
    ) {
        self.responder = responder
        self.configuration = configuration
        self.environment = environment
        self.logger = logger
        self.socket = socket
        self.server = server
        self.revocations = revocations
        self.notifier = notifier
    }

    /// Serves until SIGTERM or SIGINT, then stops in order: accepting, in-flight requests,
    /// queued revocations (up to the drain deadline), backend connections.
    /// Throws only when the workers cannot be started.
    func runUntilSignalled() throws(CrocanteError) {
        do {
            try server.start()
        } catch {
            throw .cannotListen(address: socket.address, reason: "cannot start workers: \(error)")
        }
        SystemdNotify.send("READY=1\nMAINPID=\(getpid())", environment: environment)
        logger.notice(
            "ready",
            metadata: [
                "listen": "\(socket.address)", "workers": "\(configuration.workers)",
                "backend": "\(Configuration.redactingCredentials(configuration.backendURL))", "app_env": "\(configuration.appEnvironment.rawValue)",
            ])

        let signal = ShutdownSignals.wait()
        logger.notice("stopping", metadata: ["signal": "\(ShutdownSignals.name(signal))"])
        SystemdNotify.send("STOPPING=1", environment: environment)
        reportLaterSignals()
        server.stop()
        server.wait()
        let counts = revocations.drain(timeout: configuration.drainTimeout)
        notifier.shutdown()
        printFinalReport()
        logger.notice(
            "stopped",
            metadata: [
                "requests": "\(server.counters.accepted.load(ordering: .relaxed))",
                "revocations_queued": "\(counts.queued)", "revoked": "\(counts.revoked)",
                "rejected": "\(counts.rejected)", "failed": "\(counts.failed)",
                "dropped": "\(counts.dropped)", "lost": "\(counts.lost)",
            ])
    }

    /// The status page's JSON, once, as the last line on stdout: the totals for tests, bench and
    /// scripts, which must never have to parse a log line.
    private func printFinalReport() {
        var line = responder.statusReport().json + "\n"
        line.withUTF8 { bytes in
            var written = 0
            while written < bytes.count {
                let result = write(STDOUT_FILENO, bytes.baseAddress! + written, bytes.count - written)
                if result <= 0 { break }
                written += result
            }
        }
    }

    /// A second signal during the drain is noted, not acted on: the drain is already bounded.
    private func reportLaterSignals() {
        let logger = logger
        DispatchQueue.global().async {
            while true {
                let signal = ShutdownSignals.wait()
                logger.notice("already stopping", metadata: ["signal": "\(ShutdownSignals.name(signal))"])
            }
        }
    }
}

/// Builds every part from a validated configuration; nothing accepts connections yet.
func buildApplication(configuration: Configuration, environment: [String: String]) throws(CrocanteError) -> Application {
    let level = configuration.logLevel
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "crocante-logout")

    do {
        try initializeFastCGILibrary()
    } catch {
        throw .cannotListen(address: configuration.listen.description, reason: "\(error)")
    }
    let socket = try openSocket(configuration: configuration, environment: environment)
    let notifier = try HTTPBackendNotifier(
        url: configuration.backendURL, concurrency: configuration.backendConcurrency,
        connectTimeout: configuration.backendConnectTimeout, timeout: configuration.backendTimeout)
    let revocations = RevocationQueue(
        capacity: configuration.queueCapacity, concurrency: configuration.backendConcurrency,
        notifier: notifier, logger: logger)
    let endpoint = LogoutEndpoint(
        path: configuration.logoutPath, opener: SealedSession.Opener(secrets: configuration.sessionSecrets),
        secureCookie: configuration.secureCookie)
    let workerCounters = WorkerCounters()
    let responder = LogoutResponder(
        endpoint: endpoint, revocations: revocations, configuration: configuration, workers: workerCounters)
    let server = FastCGIServer(
        socket: socket, responder: responder, workers: configuration.workers, counters: workerCounters, logger: logger)
    return Application(
        configuration: configuration, environment: environment, logger: logger, socket: socket, server: server,
        responder: responder, revocations: revocations, notifier: notifier)
}

/// The socket the configuration names; `auto` takes an inherited one, else the fallback address.
private func openSocket(configuration: Configuration, environment: [String: String]) throws(CrocanteError) -> ListeningSocket {
    var address = configuration.listen
    do {
        if address == .automatic {
            if let inherited = try ListeningSocket.inherited(environment: environment) { return inherited }
            address = ListenAddress.fallback
        }
        switch address {
        case .unix(let path):
            return try .unix(path: path, mode: configuration.socketMode)
        case .tcp(let host, let port):
            return try .tcp(host: host, port: port)
        case .automatic:
            preconditionFailure("resolved above")
        }
    } catch {
        throw .cannotListen(address: address.description, reason: "\(error)")
    }
}
