import Logging
import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// A fixed pool of worker threads, each accepting on the shared socket and serving one
/// connection at a time: closing it after every response, or, with a `KeepConnectionPolicy`
/// that is enabled, keeping it for nginx's next request while nobody else waits.
///
/// `stop()` makes workers leave their accept loop; what is being served is finished. For a
/// socket this process created, new arrivals are stopped and the backlog is served first; an
/// inherited socket's backlog is left to the parent's next process.
public final class FastCGIServer<Responder: FastCGIResponder>: Sendable {
    private let socket: ListeningSocket
    private let responder: Responder
    private let workerCount: Int
    private let logger: Logger
    private let gate: ConnectionGate
    private let keepPolicy: KeepConnectionPolicy
    /// Workers waiting in `accept` now, or on their way there to take a pending connection: a
    /// pending connection is only "waiting" for a worker to give up its kept connection when
    /// none of them is there to take it, and then exactly one gives its connection up (the one
    /// that raises this from 0 to 1), not every worker that saw the connection arrive.
    private let accepting = Atomic<Int>(0)
    /// When a worker holding a kept connection first saw a connection pending that no worker
    /// in accept took (nanoseconds on `clock`, 0 for none since the last look found the backlog
    /// empty). Shared, so that the grace runs from the first sighting, not from each worker's.
    private let pendingSince = Atomic<Int64>(0)
    private let clock = ContinuousClock()
    private let startedAt = ContinuousClock.now
    private let stopping = Atomic<Bool>(false)
    private let threads = Mutex<[pthread_t]>([])
    /// Counters for the status page.
    public let counters: WorkerCounters
    /// Connections closed unserved, by reason, for the status page.
    public let refusals: RefusalCounters
    /// Each worker's progress, for the watchdog.
    public let heartbeats: WorkerHeartbeats

    /// - Parameter gate: who may connect, the record limits and the request deadline.
    public init(
        socket: ListeningSocket, responder: Responder, workers: Int, gate: ConnectionGate,
        keepPolicy: KeepConnectionPolicy = .closing, counters: WorkerCounters, refusals: RefusalCounters,
        heartbeats: WorkerHeartbeats? = nil, logger: Logger
    ) {
        self.heartbeats = heartbeats ?? WorkerHeartbeats(workers: workers)
        precondition(self.heartbeats.count == workers, "one heartbeat per worker")
        self.gate = gate
        self.keepPolicy = keepPolicy
        self.refusals = refusals
        self.counters = counters
        self.socket = socket
        self.responder = responder
        self.workerCount = workers
        self.logger = logger
    }

    /// Starts the worker threads. Call `initializeFastCGILibrary()` first, on the main thread.
    public func start() throws(SystemError) {
        for index in 0..<workerCount {
            let thread = try spawnThread { [self] in runWorker(index) }
            threads.withLock { $0.append(thread) }
        }
    }

    /// Asks every worker to finish what it serves and leave; returns at once.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        socket.stopArrivals()
    }

    /// Waits for every worker to leave, then closes the socket if this process created it.
    public func wait() {
        for thread in threads.withLock({ $0 }) {
            pthread_join(thread, nil)
        }
        socket.closeIfOwned()
    }

    private func runWorker(_ index: Int) {
        let slot = RequestSlot()
        var backoff = Duration.zero
        // Already counted in `accepting`: it gave its kept connection up for a pending one.
        var claimedAccept = false
        defer { if claimedAccept { accepting.subtract(1, ordering: .relaxed) } }
        while !stopping.load(ordering: .acquiring) {
            if heartbeats.isParked { parkForever() }
            do {
                if !claimedAccept { accepting.add(1, ordering: .relaxed) }
                claimedAccept = false
                let accepted = Result { () throws(SystemError) in try socket.accept() }
                accepting.subtract(1, ordering: .relaxed)
                // The accept wait returns at least every poll interval: progress while idle.
                heartbeats.beat(index)
                guard let connection = try accepted.get() else { continue }
                backoff = .zero
                claimedAccept = serve(connection, with: slot, worker: index)
                heartbeats.beat(index)
            } catch {
                // EMFILE and friends: the worker must not exit; wait and try again.
                backoff = min(max(backoff * 2, .milliseconds(10)), .seconds(1))
                logger.error("accept failed, retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                sleepThread(for: backoff)
            }
        }
        if socket.isOwned { serveBacklog(with: slot, worker: index) }
    }

    /// Serves the connections already queued on a socket we are about to close, so that nginx
    /// gets an answer for every request it has sent.
    private func serveBacklog(with slot: RequestSlot, worker index: Int) {
        let clock = ContinuousClock()
        let deadline = clock.now + backlogDrainLimit
        while clock.now < deadline, socket.hasPendingConnection() {
            guard let connection = try? socket.accept() else { continue }
            serve(connection, with: slot, worker: index)
        }
    }

    /// Serves `connection`'s request, then, when it is kept, its next ones until the policy
    /// says to let it go; closes it in the end. True when it let the connection go for a pending
    /// one and so already counts in `accepting`.
    @discardableResult
    private func serve(_ connection: Int32, with slot: RequestSlot, worker index: Int) -> Bool {
        // All I/O on it is non-blocking: the waits are the gate's, the keep poll's and the
        // linger's, each bounded; libfcgi reads only what the gate has seen arrive, and the
        // input drain after the answer stops at what is there.
        try? setNonBlocking(accepted: connection)
        guard serveRequest(on: connection, with: slot) else { return false }
        while true {
            switch awaitNextRequest(on: connection, worker: index) {
            case .serveNext:
                counters.keptRequests.add(1, ordering: .relaxed)
                guard serveRequest(on: connection, with: slot) else { return false }
            case .release(let reason):
                if reason == .othersWaiting { counters.yielded.add(1, ordering: .relaxed) }
                slot.close(connection)
                return reason == .othersWaiting
            case .keepWaiting:
                continue
            }
        }
    }

    /// One request on `connection`; true when the connection is kept open for the next one.
    private func serveRequest(on connection: Int32, with slot: RequestSlot) -> Bool {
        // One deadline from accept (or from the kept connection turning readable) to complete
        // params, however the peer drips: the gate peeks until then, and libfcgi only reads
        // what the gate has seen complete. Writes: the answer is a few hundred bytes, always
        // less than the socket's send buffer, so a write never blocks.
        let deadline = ContinuousClock.now + gate.requestTimeout
        counters.accepted.add(1, ordering: .relaxed)
        let nowActive = counters.active.add(1, ordering: .relaxed).newValue
        counters.maxActive.max(nowActive, ordering: .relaxed)
        defer { counters.active.subtract(1, ordering: .relaxed) }

        if let refusal = gate.admit(connection, deadline: deadline) {
            refusals.record(refusal, logger: logger)
            slot.close(connection)
            return false
        }
        let request: FastCGIRequest
        do {
            request = try slot.begin(connection: connection)
        } catch {
            logger.debug("connection closed before its request was read", metadata: ["error": "\(error)"])
            return false
        }
        slot.write(responder.respond(to: request))
        return slot.finish(keep: keepPolicy.enabled && !stopping.load(ordering: .relaxed))
    }

    /// Waits on a kept connection for nginx's next request, looking at the listening socket too.
    /// Beats the worker's heartbeat at every look (a kept connection is progress, not a wedge),
    /// and gives the connection up when the workers are parked (the watchdog's test wedge).
    private func awaitNextRequest(on connection: Int32, worker index: Int) -> KeepConnectionPolicy.Step {
        let idleSince = clock.now
        var muteListener = false
        var muteFor = Duration.zero
        while true {
            // Short slices, so that a stop is seen as soon as by a worker in accept.
            var wait = min(max(.zero, keepPolicy.idleLimit - (clock.now - idleSince)), ListeningSocket.acceptPollInterval)
            if muteListener { wait = min(wait, muteFor) }
            let (connectionEvents, listenerEvents) = pollBoth(connection, muteListener ? -1 : socket.descriptor, within: wait)
            let now = clock.now
            let pending = listenerEvents & Int16(POLLIN) != 0
            var waited = Duration.zero
            if !muteListener { waited = notePending(pending, at: now) }
            // A connection pending while a worker sits in accept (or is on its way there) is that
            // worker's to take. Else, once it has waited out the grace (a worker about to finish
            // usually takes it first), this worker claims it and every other one keeps its own.
            let othersWaiting =
                pending && keepPolicy.othersWait(pendingFor: waited)
                && accepting.compareExchange(expected: 0, desired: 1, ordering: .relaxed).exchanged
            let step = keepPolicy.step(
                connectionReadable: connectionEvents & Int16(POLLIN) != 0,
                connectionClosed: connectionEvents & (Int16(POLLHUP) | Int16(POLLERR) | pollReadHangUp) != 0,
                othersWaiting: othersWaiting, idleFor: now - idleSince,
                stopping: stopping.load(ordering: .acquiring) || heartbeats.isParked)
            heartbeats.beat(index)
            // Claimed, but let go for another reason (a stop): the claim is not this worker's to keep.
            if othersWaiting && step != .release(.othersWaiting) { accepting.subtract(1, ordering: .relaxed) }
            if step != .keepWaiting { return step }
            // Pending: look at the connection alone for a moment rather than spin on the
            // listener, until the grace is over, or while a worker in accept takes it.
            muteListener = pending
            muteFor = keepPolicy.othersWait(pendingFor: waited) ? .milliseconds(1) : KeepConnectionPolicy.yieldGrace - waited
        }
    }

    /// Records what a look at the listener found; returns how long connections have been
    /// pending without a taker (zero when none is).
    private func notePending(_ pending: Bool, at now: ContinuousClock.Instant) -> Duration {
        guard pending, accepting.load(ordering: .relaxed) == 0 else {
            if !pending { pendingSince.store(0, ordering: .relaxed) }
            return .zero
        }
        let nanoseconds = max(1, (now - startedAt).wholeNanoseconds)
        let first = pendingSince.compareExchange(expected: 0, desired: nanoseconds, ordering: .relaxed)
        return first.exchanged ? .zero : .nanoseconds(nanoseconds - first.original)
    }
}

/// What the workers have done, for the status page; updated with relaxed atomics.
public final class WorkerCounters: Sendable {
    /// Requests begun since start (connections accepted, plus requests on kept connections).
    public let accepted = Atomic<Int>(0)
    /// Requests served on a connection kept from the one before: a connect and a close saved each.
    public let keptRequests = Atomic<Int>(0)
    /// Kept connections given up because another connection waited and no worker was free.
    public let yielded = Atomic<Int>(0)
    /// Workers serving a connection now.
    public let active = Atomic<Int>(0)
    /// The most workers ever busy at once.
    public let maxActive = Atomic<Int>(0)

    public init() {}
}

/// Test only (``WorkerHeartbeats/parkAll()``): the worker never comes back, as a wedged one.
private func parkForever() -> Never {
    while true { sleepThread(for: .seconds(3600)) }
}

/// The longest a stopping worker keeps serving an owned socket's backlog.
private let backlogDrainLimit = Duration.seconds(5)

/// Starts a joinable thread (`pthread_create`, which returns its error rather than setting errno).
func spawnThread(_ body: @escaping @Sendable () -> Void) throws(SystemError) -> pthread_t {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    guard status == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw SystemError(operation: "pthread_create", code: status)
    }
    return thread
}
