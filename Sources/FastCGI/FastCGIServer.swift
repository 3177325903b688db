import Logging
import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// A fixed pool of worker threads, each accepting on the shared socket and serving one
/// connection at a time, closing it after every response.
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
        socket: ListeningSocket, responder: Responder, workers: Int, gate: ConnectionGate, counters: WorkerCounters,
        refusals: RefusalCounters, heartbeats: WorkerHeartbeats? = nil, logger: Logger
    ) {
        self.heartbeats = heartbeats ?? WorkerHeartbeats(workers: workers)
        precondition(self.heartbeats.count == workers, "one heartbeat per worker")
        self.gate = gate
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
        while !stopping.load(ordering: .acquiring) {
            if heartbeats.isParked { parkForever() }
            do {
                // The accept wait returns at least every poll interval: progress while idle.
                let accepted = try socket.accept()
                heartbeats.beat(index)
                guard let connection = accepted else { continue }
                backoff = .zero
                serve(connection, with: slot)
                heartbeats.beat(index)
            } catch {
                // EMFILE and friends: the worker must not exit; wait and try again.
                backoff = min(max(backoff * 2, .milliseconds(10)), .seconds(1))
                logger.error("accept failed, retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                sleepThread(for: backoff)
            }
        }
        if socket.isOwned { serveBacklog(with: slot) }
    }

    /// Serves the connections already queued on a socket we are about to close, so that nginx
    /// gets an answer for every request it has sent.
    private func serveBacklog(with slot: RequestSlot) {
        let clock = ContinuousClock()
        let deadline = clock.now + backlogDrainLimit
        while clock.now < deadline, socket.hasPendingConnection() {
            guard let connection = try? socket.accept() else { continue }
            serve(connection, with: slot)
        }
    }

    private func serve(_ connection: Int32, with slot: RequestSlot) {
        // One deadline from accept to complete params, however the peer drips: the gate peeks
        // until then, and libfcgi only reads what the gate has seen complete. The receive
        // timeout is a backstop for libfcgi's reads (a unix connection inherits none, a TCP one
        // the listener's short accept poll). Writes: the answer is a few hundred bytes, always
        // less than the socket's send buffer, so a write never blocks.
        let deadline = ContinuousClock.now + gate.requestTimeout
        try? setReceiveTimeout(connection, gate.requestTimeout)
        counters.accepted.add(1, ordering: .relaxed)
        let nowActive = counters.active.add(1, ordering: .relaxed).newValue
        counters.maxActive.max(nowActive, ordering: .relaxed)
        defer { counters.active.subtract(1, ordering: .relaxed) }

        if let refusal = gate.admit(connection, deadline: deadline) {
            refusals.record(refusal, logger: logger)
            close(connection)
            return
        }
        let request: FastCGIRequest
        do {
            request = try slot.begin(connection: connection)
        } catch {
            logger.debug("connection closed before its request was read", metadata: ["error": "\(error)"])
            return
        }
        slot.write(responder.respond(to: request))
        slot.finish()
    }
}

/// What the workers have done, for the status page; updated with relaxed atomics.
public final class WorkerCounters: Sendable {
    /// Connections accepted since start.
    public let accepted = Atomic<Int>(0)
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
