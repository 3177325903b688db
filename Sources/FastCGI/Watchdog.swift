import Logging
import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// systemd's watchdog (`WatchdogSec=`), fed from the workers' heartbeats rather than a timer:
/// a thread looks at ``WorkerHeartbeats`` four times per interval and sends `WATCHDOG=1` only when
/// ``WatchdogPolicy`` says every worker still makes progress. When the workers are wedged the
/// pings stop, and systemd kills the process (`WatchdogSignal=`, SIGABRT by default) and
/// restarts it (`Restart=always`).
public final class Watchdog: Sendable {
    /// How often the heartbeats are looked at: a quarter of systemd's interval, so that one late
    /// look under load still pings in time.
    public let checkInterval: Duration
    private let heartbeats: WorkerHeartbeats
    private let allowance: Duration
    private let environment: [String: String]
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)

    private init(
        interval: Duration, heartbeats: WorkerHeartbeats, allowance: Duration, environment: [String: String], logger: Logger
    ) {
        checkInterval = interval / 4
        self.heartbeats = heartbeats
        self.allowance = allowance
        self.environment = environment
        self.logger = logger
    }

    /// Starts the pinging thread when systemd asked for a watchdog (`WATCHDOG_USEC`, see
    /// ``WatchdogPolicy/interval(environment:pid:)``); nil otherwise.
    /// - Parameter allowance: the longest silence of a healthy worker (see ``WatchdogPolicy``).
    public static func start(
        environment: [String: String], heartbeats: WorkerHeartbeats, allowance: Duration, logger: Logger
    ) throws(SystemError) -> Watchdog? {
        guard let interval = WatchdogPolicy.interval(environment: environment, pid: getpid()) else { return nil }
        let watchdog = Watchdog(
            interval: interval, heartbeats: heartbeats, allowance: allowance, environment: environment, logger: logger)
        let thread = try spawnThread { [watchdog] in watchdog.run() }
        watchdog.thread.withLock { $0 = thread }
        logger.info(
            "watchdog on", metadata: ["interval": "\(interval)", "check_every": "\(watchdog.checkInterval)", "allowance": "\(allowance)"])
        return watchdog
    }

    /// Stops pinging (at a stop: the workers leave, their heartbeats end) and waits for the thread.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        if let thread = thread.withLock({ $0 }) { pthread_join(thread, nil) }
    }

    private func run() {
        let clock = ContinuousClock()
        let origin = clock.now
        var policy = WatchdogPolicy(workers: heartbeats.count, allowance: allowance, now: .zero)
        var wasHealthy = true
        while !stopped.load(ordering: .acquiring) {
            let now = clock.now - origin
            let healthy = policy.check(progress: heartbeats.snapshot(), now: now)
            if healthy {
                SystemdNotify.send("WATCHDOG=1", environment: environment)
            } else if wasHealthy {
                logger.error(
                    "workers show no progress: no more watchdog pings, systemd will restart the responder",
                    metadata: ["silent_workers": "\(policy.silentWorkers(now: now))", "allowance": "\(allowance)"])
            }
            wasHealthy = healthy
            // Short sleeps so that stop() returns quickly.
            let wake = clock.now + checkInterval
            while !stopped.load(ordering: .acquiring), clock.now < wake {
                sleepThread(for: min(wake - clock.now, .milliseconds(100)))
            }
        }
    }
}
