/// When the responder may tell systemd's watchdog it is alive (`WATCHDOG=1`): only while every
/// worker has shown progress (see ``WorkerHeartbeats``) within `allowance`. A plain value: the
/// caller passes the counters and the time, so it is tested without threads or clocks.
///
/// A worker shows progress at least every accept poll interval while idle, and after each
/// connection while busy; a connection is bounded by the request deadline plus the lingering
/// close, so a healthy worker is never silent for longer than that. `allowance` must cover it.
public struct WatchdogPolicy: Sendable {
    /// How long a worker may go without progress before the responder counts as wedged.
    public let allowance: Duration
    private var lastCounts: [UInt64]
    private var lastChange: [Duration]

    /// - Parameters:
    ///   - workers: how many counters `check` will be given.
    ///   - allowance: the longest silence of a healthy worker.
    ///   - now: the time of creation, on the same clock as `check`'s: every worker starts fresh.
    public init(workers: Int, allowance: Duration, now: Duration) {
        self.allowance = allowance
        lastCounts = Array(repeating: 0, count: workers)
        lastChange = Array(repeating: now, count: workers)
    }

    /// Records the workers' counters at `now` and says whether to send `WATCHDOG=1`.
    public mutating func check(progress: [UInt64], now: Duration) -> Bool {
        precondition(progress.count == lastCounts.count, "one counter per worker")
        var healthy = true
        for index in progress.indices {
            if progress[index] != lastCounts[index] {
                lastCounts[index] = progress[index]
                lastChange[index] = now
            } else if now - lastChange[index] > allowance {
                healthy = false
            }
        }
        return healthy
    }

    /// The workers that have been silent for longer than `allowance` at `now`, for the log line.
    public func silentWorkers(now: Duration) -> [Int] {
        lastChange.indices.filter { now - lastChange[$0] > allowance }
    }

    /// The watchdog interval systemd asks for: `WATCHDOG_USEC` microseconds, when it is a
    /// positive number and `WATCHDOG_PID` is unset or this process (`sd_watchdog_enabled`'s
    /// rules); nil when the unit has no `WatchdogSec=`.
    public static func interval(environment: [String: String], pid: Int32) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0,
            micros <= UInt64(Int64.max / 1000)
        else { return nil }
        if let pidText = environment["WATCHDOG_PID"], !pidText.isEmpty {
            guard Int32(pidText) == pid else { return nil }
        }
        return .microseconds(Int64(micros))
    }
}
