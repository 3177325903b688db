import Logging
import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// A fixed pool of worker threads serving the shared socket, one request at a time each.
///
/// Closing (``KeepConnectionPolicy/closing``): each worker accepts a connection, answers it and
/// closes it. Keeping: the workers wait together on one epoll set (``KeptConnections``) holding
/// the listener (then non-blocking) and every kept connection idle between two requests; whichever worker is free
/// takes whichever is ready, a new connection or a kept one's next request, and parks a kept
/// connection there again after the answer. No worker is held by an idle connection, and no
/// kept connection is closed because another waits.
///
/// `stop()` makes workers leave their loop; what is being served is finished. For a socket
/// this process created, new arrivals are stopped and the backlog is served first; an
/// inherited socket's backlog is left to the parent's next process.
public final class FastCGIServer<Responder: FastCGIResponder>: Sendable {
    private let socket: ListeningSocket
    private let responder: Responder
    private let workerCount: Int
    private let logger: Logger
    private let gate: ConnectionGate
    /// The shared set of kept connections, when nginx's `fastcgi_keep_conn on` is honoured.
    private let kept: KeptConnections?
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
    ) throws(SystemError) {
        self.heartbeats = heartbeats ?? WorkerHeartbeats(workers: workers)
        precondition(self.heartbeats.count == workers, "one heartbeat per worker")
        self.gate = gate
        self.refusals = refusals
        self.counters = counters
        self.socket = socket
        self.responder = responder
        self.workerCount = workers
        self.logger = logger
        kept = keepPolicy.enabled
            ? try KeptConnections(
                listener: socket.descriptor, idleLimit: keepPolicy.idleLimit,
                capacity: KeptConnections.capacityForThisProcess(), counters: counters)
            : nil
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

    /// Waits for every worker to leave, closes the kept connections still parked, then the
    /// socket if this process created it.
    public func wait() {
        for thread in threads.withLock({ $0 }) {
            pthread_join(thread, nil)
        }
        kept?.closeAll()
        socket.closeIfOwned()
    }

    private func runWorker(_ index: Int) {
        let slot = RequestSlot()
        if let kept { runKeeping(index, with: slot, kept) } else { runClosing(index, with: slot) }
        if socket.isOwned { serveBacklog(with: slot, worker: index) }
    }

    private func runClosing(_ index: Int, with slot: RequestSlot) {
        var backoff = Duration.zero
        while !stopping.load(ordering: .acquiring) {
            if heartbeats.isParked { parkForever() }
            do {
                let accepted = try socket.accept()
                // The accept wait returns at least every poll interval: progress while idle.
                heartbeats.beat(index)
                guard let connection = accepted else {
                    // Non-blocking: a process keeping connections on the same socket made it so.
                    socket.awaitConnectionIfNonBlocking()
                    continue
                }
                backoff = .zero
                serve(connection, with: slot)
                heartbeats.beat(index)
            } catch {
                backoff = retryAfterAcceptFailure(error, backoff: backoff)
            }
        }
    }

    private func runKeeping(_ index: Int, with slot: RequestSlot, _ kept: KeptConnections) {
        var backoff = Duration.zero
        while !stopping.load(ordering: .acquiring) {
            if heartbeats.isParked { parkForever() }
            // Returns at least every poll interval: progress while idle, and a stop is seen.
            let event = kept.readiness.next(within: ListeningSocket.acceptPollInterval)
            heartbeats.beat(index)
            kept.sweepIfDue()
            switch event {
            case nil:
                continue
            case .listener:
                do {
                    // nil: another worker took it first.
                    guard let connection = try socket.accept() else { continue }
                    backoff = .zero
                    try? setNonBlocking(accepted: connection)
                    serveKept(connection, registered: false, with: slot, kept)
                } catch {
                    // Out of descriptors: an idle kept connection makes room before anyone waits.
                    if error.code == EMFILE || error.code == ENFILE, kept.evictOldest() { continue }
                    backoff = retryAfterAcceptFailure(error, backoff: backoff)
                }
            case .connection(let ticket, let readable, let hungUp):
                guard kept.take(ticket) else { continue }  // closed meanwhile: an expiry's or an eviction's
                // nginx closing an idle connection makes it readable too, at end of file.
                guard readable, !hungUp || hasInput(ticket.descriptor) else {
                    close(ticket.descriptor)
                    continue
                }
                counters.keptRequests.add(1, ordering: .relaxed)
                serveKept(ticket.descriptor, registered: true, with: slot, kept)
            }
            heartbeats.beat(index)
        }
        // Requests nginx sent on kept connections before the stop get their answer; the
        // connections still idle are closed once every worker has left (`wait`).
        while let event = kept.readiness.next(within: .zero) {
            // The listener's backlog is `serveBacklog`'s.
            guard case .connection(let ticket, let readable, let hungUp) = event, kept.take(ticket) else { continue }
            if readable, !hungUp || hasInput(ticket.descriptor) {
                serveKept(ticket.descriptor, registered: true, with: slot, kept)
            } else {
                close(ticket.descriptor)
            }
        }
    }

    /// EMFILE and friends: the worker must not exit; it waits and tries again. Returns the next wait.
    private func retryAfterAcceptFailure(_ error: SystemError, backoff: Duration) -> Duration {
        let backoff = min(max(backoff * 2, .milliseconds(10)), .seconds(1))
        logger.error("accept failed, retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
        sleepThread(for: backoff)
        return backoff
    }

    /// Serves the connections already queued on a socket we are about to close, so that nginx
    /// gets an answer for every request it has sent.
    private func serveBacklog(with slot: RequestSlot, worker index: Int) {
        let clock = ContinuousClock()
        let deadline = clock.now + backlogDrainLimit
        while clock.now < deadline, socket.hasPendingConnection() {
            guard let connection = try? socket.accept() else { continue }
            serve(connection, with: slot)
        }
    }

    /// Serves `connection`'s one request and closes it.
    private func serve(_ connection: Int32, with slot: RequestSlot) {
        // All I/O on it is non-blocking: the waits are the gate's and the linger's, each
        // bounded; libfcgi reads only what the gate has seen arrive, and the input drain after
        // the answer stops at what is there.
        try? setNonBlocking(accepted: connection)
        _ = serveRequest(on: connection, with: slot, keep: false, peerChecked: false)
    }

    /// Serves the request now on `connection` and parks it again when it is kept.
    private func serveKept(_ connection: Int32, registered: Bool, with slot: RequestSlot, _ kept: KeptConnections) {
        let keep = !stopping.load(ordering: .relaxed)
        // The peer of a kept connection was checked when it was accepted.
        guard serveRequest(on: connection, with: slot, keep: keep, peerChecked: registered) else { return }
        kept.park(connection, registered: registered)
    }

    /// One request on `connection`; true when it is kept open (`keep`, and nginx asked to) for
    /// the next one and is the caller's to park; else it is closed.
    private func serveRequest(on connection: Int32, with slot: RequestSlot, keep: Bool, peerChecked: Bool) -> Bool {
        // One deadline from accept (or from the kept connection turning readable) to complete
        // params, however the peer drips: the gate peeks until then, and libfcgi only reads
        // what the gate has seen complete. Writes: the answer is a few hundred bytes, always
        // less than the socket's send buffer, so a write never blocks.
        let deadline = ContinuousClock.now + gate.requestTimeout
        counters.accepted.add(1, ordering: .relaxed)
        let nowActive = counters.active.add(1, ordering: .relaxed).newValue
        counters.maxActive.max(nowActive, ordering: .relaxed)
        defer { counters.active.subtract(1, ordering: .relaxed) }

        if let refusal = gate.admit(connection, deadline: deadline, peerChecked: peerChecked) {
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
        return slot.finish(keep: keep)
    }
}

/// What the workers have done, for the status page; updated with relaxed atomics.
public final class WorkerCounters: Sendable {
    /// Requests begun since start (connections accepted, plus requests on kept connections).
    public let accepted = Atomic<Int>(0)
    /// Requests served on a connection kept from the one before: a connect and a close saved each.
    public let keptRequests = Atomic<Int>(0)
    /// Kept connections parked now, idle between two requests.
    public let keptIdle = Atomic<Int>(0)
    /// Kept connections closed after being idle for `CROCANTE_KEEPALIVE_IDLE_MS`.
    public let keptExpired = Atomic<Int>(0)
    /// Kept connections closed, oldest first, to make room: the set was full, or the process
    /// was out of descriptors.
    public let keptEvicted = Atomic<Int>(0)
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
