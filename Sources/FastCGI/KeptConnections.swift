import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// Every worker's kept connections, parked idle in one ``ReadinessSet`` between requests and
/// taken by whichever worker is free when one turns readable. No worker sits on an idle
/// connection, and none is closed because another waits: a kept connection is closed only
/// when it has been idle for the policy's limit, when the set is full (the oldest, for the
/// newest), when the process runs out of descriptors (the oldest), or at stop.
final class KeptConnections: Sendable {
    let readiness: ReadinessSet
    private let idleLimit: Duration
    private let parked: Mutex<ParkedConnections>
    private let counters: WorkerCounters
    /// When the next look for connections idle past the limit is due (nanoseconds since `startedAt`).
    private let nextSweep = Atomic<Int64>(0)
    private let sweepInterval: Duration
    private let clock = ContinuousClock()
    private let startedAt = ContinuousClock.now

    init(listener: Int32, idleLimit: Duration, capacity: Int, counters: WorkerCounters) throws(SystemError) {
        readiness = try ReadinessSet(listener: listener)
        self.idleLimit = idleLimit
        parked = Mutex(ParkedConnections(capacity: capacity))
        self.counters = counters
        // A fraction of the limit, so that a connection is closed soon after it: the look is a
        // lock and a glance at the oldest one.
        sweepInterval = min(idleLimit / 4, .milliseconds(100))
    }

    /// How many connections may be parked when the process may open `openFileLimit`
    /// descriptors: all but a quarter (256 at least) kept for the listener, logs, the spool,
    /// the backend's pool and the outbox, so that idle connections never starve those.
    static func capacity(openFileLimit: Int) -> Int {
        max(16, openFileLimit - max(256, openFileLimit / 4))
    }

    /// The capacity for this process's `RLIMIT_NOFILE`.
    static func capacityForThisProcess() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return capacity(openFileLimit: 1024) }
        return capacity(openFileLimit: Int(clamping: limit.rlim_cur))
    }

    /// True when the connection `ticket` is for is now the caller's to serve (or close).
    func take(_ ticket: ParkedConnections.Ticket) -> Bool {
        parked.withLock { table in
            let taken = table.take(ticket)
            counters.keptIdle.store(table.count, ordering: .relaxed)
            return taken
        }
    }

    /// Parks a connection whose answer went out and that nginx keeps, until its next request.
    /// `registered`: it is in the set already (it came from there), disarmed by its event.
    func park(_ connection: Int32, registered: Bool) {
        let now = clock.now
        let (ticket, evicted) = parked.withLock { table in
            let parking = table.park(connection, at: now)
            counters.keptIdle.store(table.count, ordering: .relaxed)
            return parking
        }
        if let evicted {
            close(evicted)
            counters.keptEvicted.add(1, ordering: .relaxed)
        }
        do {
            try readiness.arm(ticket, registered: registered)
        } catch {
            // The kernel's watch limit (ENOSPC) or memory: this one is closed rather than kept.
            if take(ticket) { close(connection) }
            return
        }
        _ = parked.withLock { $0.arm(ticket) }
    }

    /// Closes the connections idle past the limit, when a look is due (any worker may call it).
    func sweepIfDue() {
        let now = clock.now
        let nanoseconds = (now - startedAt).wholeNanoseconds
        let due = nextSweep.load(ordering: .relaxed)
        guard nanoseconds >= due,
            nextSweep.compareExchange(expected: due, desired: nanoseconds + sweepInterval.wholeNanoseconds, ordering: .relaxed).exchanged
        else { return }
        let expired = parked.withLock { table in
            let expired = table.expire(parkedBy: now - idleLimit)
            counters.keptIdle.store(table.count, ordering: .relaxed)
            return expired
        }
        for connection in expired { close(connection) }
        counters.keptExpired.add(expired.count, ordering: .relaxed)
    }

    /// Closes the oldest parked connection, for a descriptor the process needs now; false when
    /// none is parked.
    func evictOldest() -> Bool {
        let oldest = parked.withLock { table in
            let oldest = table.evictOldest()
            counters.keptIdle.store(table.count, ordering: .relaxed)
            return oldest
        }
        guard let oldest else { return false }
        close(oldest)
        counters.keptEvicted.add(1, ordering: .relaxed)
        return true
    }

    /// Closes every parked connection: at stop, once no worker is left to serve them.
    func closeAll() {
        let all = parked.withLock { table in
            let all = table.removeAll()
            counters.keptIdle.store(0, ordering: .relaxed)
            return all
        }
        for connection in all { close(connection) }
    }
}
