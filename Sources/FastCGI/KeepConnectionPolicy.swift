/// Whether a worker keeps the connection nginx asked it to keep (`fastcgi_keep_conn on`), and
/// for how long it waits on it for the next request.
///
/// libfcgi pins a thread to every kept connection, so kept naively, nginx opening more
/// connections than there are workers queues requests behind idle connections (seconds of
/// latency, or a wedge with an accept mutex). Here a worker serves a kept connection's next
/// request only while nobody else waits: once a connection has been pending on the listening
/// socket for `yieldGrace` with no worker in accept to take it, or the kept connection has
/// been idle for `idleLimit`, the worker closes it and goes back to accepting. The check is
/// one `poll` on the two descriptors.
public struct KeepConnectionPolicy: Sendable, Equatable {
    public var enabled: Bool
    /// The longest a worker waits on an idle kept connection when nobody else waits either.
    public var idleLimit: Duration

    public init(enabled: Bool, idleLimit: Duration) {
        self.enabled = enabled
        self.idleLimit = idleLimit
    }

    /// How long a connection may wait for a worker before one gives its kept connection up
    /// for it. Not zero: under an uneven load nginx opens connections beyond its cache in
    /// bursts, and a worker about to finish (or one whose extra connection nginx is closing)
    /// usually takes them within microseconds; giving a kept connection up at once closed one
    /// nginx would use next, so that nginx sent a request on it and had to send it again
    /// (through nginx at a steady 5,000 requests/s, one 3 s run each: kept connections given up
    /// 9,586 without the grace, 5,928 with it; nginx's resends 25.5 and 11.2 per 1,000
    /// requests). It runs from the first sighting by any worker, so a standing backlog pays it
    /// once; poll's millisecond resolution stretches it to 1 ms at most.
    static let yieldGrace = Duration.microseconds(500)

    /// Whether a connection that has waited `pendingFor` with nobody in accept is waiting for a
    /// kept connection to be given up.
    func othersWait(pendingFor: Duration) -> Bool {
        pendingFor >= Self.yieldGrace
    }

    /// Every connection closed after its answer, whatever nginx asked.
    public static let closing = KeepConnectionPolicy(enabled: false, idleLimit: .zero)

    /// Why a worker gave a kept connection up.
    enum Release: Equatable {
        /// Another connection waited in the listening socket's backlog.
        case othersWaiting
        case idle
        /// nginx closed it (or it failed).
        case peerClosed
        case stopping
    }

    /// What a worker holding a kept connection does next.
    enum Step: Equatable {
        case serveNext
        case keepWaiting
        case release(Release)
    }

    /// What one look at the two descriptors means. Others waiting win over a request already
    /// on the connection: a worker is never pinned while a connection queues, and nginx,
    /// configured with `fastcgi_next_upstream error timeout non_idempotent`, sends a request
    /// it lost that way again on another connection.
    func step(
        connectionReadable: Bool, connectionClosed: Bool, othersWaiting: Bool, idleFor: Duration, stopping: Bool
    ) -> Step {
        if stopping { return .release(.stopping) }
        if othersWaiting { return .release(.othersWaiting) }
        if connectionClosed { return .release(.peerClosed) }
        if connectionReadable { return .serveNext }
        return idleFor >= idleLimit ? .release(.idle) : .keepWaiting
    }
}
