import Dispatch
import FastCGI
import Logging
import LogoutCore
import Revocation
import RevocationOutbox
import RevocationSpool
import Synchronization
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
    /// The fleet's outbox, and whether its schema was reached at start; nil without `CROCANTE_OUTBOX`.
    let outbox: (outbox: RevocationOutbox, prepared: Bool)?

    init(
        configuration: Configuration, environment: [String: String], logger: Logger, socket: ListeningSocket,
        server: FastCGIServer<LogoutResponder>, responder: LogoutResponder, revocations: RevocationQueue, spool: Spool?,
        notifier: HTTPBackendNotifier, outbox: (outbox: RevocationOutbox, prepared: Bool)?
    ) {
        self.spool = spool
        self.outbox = outbox
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
        outbox.map { $0.outbox.start(prepared: $0.prepared) }
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
                "outbox": "\(configuration.outbox?.description ?? "none")",
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
        let drainStarted = ContinuousClock.now
        _ = revocations.drain(timeout: configuration.drainTimeout)
        if let outbox = outbox?.outbox {
            // The rest of the drain deadline for the outbox's calls in flight; their verdicts are
            // written back, and rows still held go to another host when their lease runs out.
            let left = max(.milliseconds(500), configuration.drainTimeout - (ContinuousClock.now - drainStarted))
            waitFor { await outbox.stop(timeout: left) }
        }
        notifier.shutdown()
        let report = responder.statusReport()
        // The report's counts: with an outbox, the backend's verdicts are the outbox's.
        let counts = report.revocations
        writeToStandardOutput(report.json + "\n")
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
    let outbox: (outbox: RevocationOutbox, prepared: Bool)?
    do {
        outbox = try openOutbox(configuration: configuration, backend: notifier, logger: logger)
        spool = try openSpool(configuration: configuration, logger: logger)
        socket = try openSocket(configuration: configuration, environment: environment)
    } catch {
        // async-http-client traps if a client is released without being shut down.
        notifier.shutdown()
        throw error
    }
    // With an outbox the queue's calls store into the shared table, and the outbox calls the
    // backend with CROCANTE_BACKEND_CONCURRENCY. The queue then keeps a whole batch of writes in
    // flight: sixteen at a time would mean a commit per sixteen logouts, and the rest parked.
    var queueSettings = configuration.revocationSettings
    if outbox != nil { queueSettings.concurrency = RevocationOutbox.storeBatch }
    let revocations = RevocationQueue(
        settings: queueSettings, notifier: outbox?.outbox ?? notifier, journal: spool, logger: logger)
    let workerCounters = WorkerCounters()
    let heartbeats = WorkerHeartbeats(workers: configuration.workers)
    let refusals = RefusalCounters()
    let responder = LogoutResponder(
        router: Router(configuration: configuration), revocations: revocations, spool: spool, outbox: outbox?.outbox,
        workers: workerCounters, heartbeats: heartbeats,
        workerCount: configuration.workers, refusals: refusals, logger: logger,
        mismatches: .init(share: configuration.secretMismatchShare))
    let gate = ConnectionGate(allowlist: configuration.allowlist, requestTimeout: configuration.requestTimeout)
    let server: FastCGIServer<LogoutResponder>
    do {
        server = try FastCGIServer(
            socket: socket, responder: responder, workers: configuration.workers, gate: gate,
            keepPolicy: configuration.keepPolicy, counters: workerCounters, refusals: refusals, heartbeats: heartbeats,
            logger: logger)
    } catch {
        notifier.shutdown()
        throw .cannotStart(operation: "the kept connections' epoll set", reason: "\(error)")
    }
    return Application(
        configuration: configuration, environment: environment, logger: logger, socket: socket, server: server,
        responder: responder, revocations: revocations, spool: spool, notifier: notifier, outbox: outbox)
}

/// The outbox `CROCANTE_OUTBOX` names, its schema created or migrated, or nil.
///
/// A database that answers "no" (authentication, no such database, privileges, a newer schema)
/// is a configuration error: exit 78. One that does not answer is an outage, not a reason to
/// refuse logouts: the service starts, the spool buffers, and the outbox catches up when the
/// database is back.
private func openOutbox(
    configuration: Configuration, backend: any BackendNotifier, logger: Logger
) throws(CrocanteError) -> (outbox: RevocationOutbox, prepared: Bool)? {
    guard let address = configuration.outbox else { return nil }
    let settings = RevocationOutbox.Settings(
        address: address, revocation: configuration.revocationSettings,
        // Longer than any call can take (the call deadline covers connecting), so no two hosts call at once.
        lease: configuration.backendTimeout * 2 + .seconds(5), hostName: "\(hostName())/\(getpid())")
    let outbox = try RevocationOutbox(
        settings: settings, secrets: configuration.sessionSecrets, backend: backend, logger: logger)
    let failure: RevocationOutbox.StartFailure? = waitFor {
        do throws(RevocationOutbox.StartFailure) {
            try await outbox.prepare()
            return nil
        } catch {
            return error
        }
    }
    switch failure {
    case nil:
        return (outbox, true)
    case .refused(let reason):
        throw .invalidSetting(Settings.outbox.name, reason: "the database refused: \(reason)")
    case .unreachable(let reason):
        logger.error(
            "outbox unreachable at start: serving anyway, revocations wait in the spool until the database answers",
            metadata: ["outbox": "\(address)", "reason": "\(reason)"])
        return (outbox, false)
    }
}

/// This host's name, for the outbox's `claimed_by`.
private func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs `body` to its end from synchronous code that is not itself on a concurrency thread
/// (start-up and shutdown, on the main thread).
private func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    Task {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
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
