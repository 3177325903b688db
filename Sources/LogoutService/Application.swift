import Dispatch
import FastCGI
import Logging
import LogoutCore
import Revocation
import RevocationSpool
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// The running service: socket, workers, revocation queue and backend client.
public final class Application {
    let configuration: Configuration
    let environment: [String: String]
    let logger: Logger
    let socket: ListeningSocket
    let server: FastCGIServer<LogoutResponder>
    let responder: LogoutResponder
    let revocations: RevocationQueue
    let spool: Spool?
    let notifier: HTTPBackendNotifier

    init(
        configuration: Configuration, environment: [String: String], logger: Logger, socket: ListeningSocket,
        server: FastCGIServer<LogoutResponder>, responder: LogoutResponder, revocations: RevocationQueue, spool: Spool?,
        notifier: HTTPBackendNotifier
    ) {
        self.spool = spool
        self.configuration = configuration
        self.environment = environment
        self.logger = logger
        self.socket = socket
        self.server = server
        self.responder = responder
        self.revocations = revocations
        self.notifier = notifier
    }

    /// Serves until SIGTERM or SIGINT, then stops in order: accepting, in-flight requests,
    /// queued revocations (up to the drain deadline), backend connections; and prints the final
    /// status JSON on stdout. Throws only when the workers cannot be started.
    public func runUntilSignalled() throws(CrocanteError) {
        do {
            try server.start()
        } catch {
            throw .cannotStart(operation: "starting \(configuration.workers) workers", reason: "\(error)")
        }
        for warning in configuration.warnings { logger.warning("\(warning)") }
        SystemdNotify.send("READY=1\nMAINPID=\(getpid())", environment: environment)
        let watchdog: Watchdog?
        do {
            watchdog = try Watchdog.start(
                environment: environment, heartbeats: server.heartbeats,
                allowance: configuration.watchdogAllowance, logger: logger)
        } catch {
            throw .cannotStart(operation: "starting the watchdog thread", reason: "\(error)")
        }
        logger.notice(
            "ready",
            metadata: [
                "listen": "\(socket.address)", "workers": "\(configuration.workers)",
                "backend": "\(Configuration.redactingCredentials(configuration.backendURL))",
                "app_env": "\(configuration.appEnvironment.rawValue)",
                "spool": "\(configuration.spoolDirectory ?? "none")",
                "backend_proxy": "\(configuration.backendProxy?.description ?? "none")",
                "backend_client_certificate": "\(configuration.backendTLS?.clientKey == nil ? "no" : "yes")",
            ])
        if spool == nil {
            logger.notice(
                "no spool: revocations are kept in memory only and do not survive a crash or restart (set CROCANTE_SPOOL_DIR)")
        }

        let signal = ShutdownSignals.wait()
        logger.notice("stopping", metadata: ["signal": "\(ShutdownSignals.name(signal))"])
        SystemdNotify.send("STOPPING=1", environment: environment)
        reportLaterSignals()
        watchdog?.stop()
        server.stop()
        server.wait()
        let counts = revocations.drain(timeout: configuration.drainTimeout)
        notifier.shutdown()
        writeToStandardOutput(responder.statusReport().json + "\n")
        logger.notice(
            "stopped",
            metadata: [
                "requests": "\(server.counters.accepted.load(ordering: .relaxed))",
                "revocations_queued": "\(counts.queued)", "revoked": "\(counts.revoked)",
                "rejected": "\(counts.rejected)", "failed": "\(counts.failed)",
                "dropped": "\(counts.dropped)", "lost": "\(counts.lost)", "handed_over": "\(counts.handedOver)",
            ])
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
public func buildApplication(configuration: Configuration, environment: [String: String]) throws(CrocanteError) -> Application {
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
        throw .cannotStart(operation: "FCGX_Init", reason: "\(error)")
    }
    // Everything that can refuse the configuration comes before the socket: a refused URL or
    // spool directory must not leave a socket file behind.
    let notifier = try HTTPBackendNotifier(
        url: configuration.backendURL, concurrency: configuration.backendConcurrency,
        connectTimeout: configuration.backendConnectTimeout, timeout: configuration.backendTimeout,
        tls: configuration.backendTLS, proxy: configuration.backendProxy)
    let spool: Spool?
    let socket: ListeningSocket
    do {
        spool = try openSpool(configuration: configuration, logger: logger)
        socket = try openSocket(configuration: configuration, environment: environment)
    } catch {
        // async-http-client traps if a client is released without being shut down.
        notifier.shutdown()
        throw error
    }
    let revocations = RevocationQueue(
        settings: configuration.revocationSettings, notifier: notifier, journal: spool, logger: logger)
    let workerCounters = WorkerCounters()
    let heartbeats = WorkerHeartbeats(workers: configuration.workers)
    let refusals = RefusalCounters()
    let responder = LogoutResponder(
        router: Router(configuration: configuration), revocations: revocations, spool: spool,
        workers: workerCounters, heartbeats: heartbeats,
        workerCount: configuration.workers, refusals: refusals, logger: logger,
        mismatches: .init(share: configuration.secretMismatchShare))
    let gate = ConnectionGate(allowlist: configuration.allowlist, requestTimeout: configuration.requestTimeout)
    let server = FastCGIServer(
        socket: socket, responder: responder, workers: configuration.workers, gate: gate,
        keepPolicy: configuration.keepPolicy, counters: workerCounters, refusals: refusals, heartbeats: heartbeats,
        logger: logger)
    return Application(
        configuration: configuration, environment: environment, logger: logger, socket: socket, server: server,
        responder: responder, revocations: revocations, spool: spool, notifier: notifier)
}

/// The spool the configuration names, or nil (memory-only, said once when ready).
private func openSpool(configuration: Configuration, logger: Logger) throws(CrocanteError) -> Spool? {
    guard let directory = configuration.spoolDirectory else { return nil }
    let settings = SpoolSettings(
        directory: directory, syncInterval: configuration.spoolSyncInterval, maxBytes: configuration.spoolMaxBytes,
        setting: configuration.spoolDirectorySource)
    return try Spool(settings: settings, secrets: configuration.sessionSecrets, logger: logger)
}

extension Configuration {
    /// The longest a healthy worker goes without progress: a connection's request deadline, the
    /// lingering close (1 s), and two accept polls with a margin (2 s). Past it, no more watchdog pings.
    var watchdogAllowance: Duration { requestTimeout + .seconds(3) }

    /// The revocation queue's part of the configuration.
    var revocationSettings: RevocationSettings {
        var settings = RevocationSettings(capacity: queueCapacity, concurrency: backendConcurrency)
        settings.dedupWindow = dedupWindow
        settings.retryBase = retryBase
        settings.retryMax = retryMax
        settings.maxAge = revocationMaxAge
        return settings
    }
}

/// The socket the configuration names; `auto` takes an inherited one, else the fallback address.
private func openSocket(configuration: Configuration, environment: [String: String]) throws(CrocanteError) -> ListeningSocket {
    var address = configuration.listen
    do {
        if address == .automatic {
            if let inherited = try ListeningSocket.inherited(environment: environment) { return inherited }
            address = ListenAddress.fallback
        }
        guard let socketAddress = address.socketAddress else {
            throw SystemError(operation: "no address to bind", code: EINVAL)
        }
        return try .bound(to: socketAddress, mode: configuration.socketMode)
    } catch {
        throw .cannotListen(address: address.description, reason: "\(error)")
    }
}

/// Writes all of `text` to stdout (`write(2)`, unbuffered: it must be out before the process exits).
private func writeToStandardOutput(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var written = 0
        while written < bytes.count,
            let result = try? systemCall("write(stdout)", retryingOnInterrupt: true, {
                write(STDOUT_FILENO, bytes.baseAddress! + written, bytes.count - written)
            }), result > 0
        {
            written += result
        }
    }
}
