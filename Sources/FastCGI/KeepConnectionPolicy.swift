/// Whether a worker keeps the connection nginx asked it to keep (`fastcgi_keep_conn on`), and
/// for how long it waits on it for the next request.
///
/// libfcgi pins a thread to every kept connection, so kept naively, nginx opening more
/// connections than there are workers queues requests behind idle connections (seconds of
/// latency, or a wedge with an accept mutex). Here a worker serves a kept connection's next
/// request only while nobody else waits: the moment the listening socket has a pending
/// connection, or the connection has been idle for `idleLimit`, the worker closes it and goes
/// back to accepting. The check is one `poll` on the two descriptors.
public struct KeepConnectionPolicy: Sendable, Equatable {
    public var enabled: Bool
    /// The longest a worker waits on an idle kept connection when nobody else waits either.
    public var idleLimit: Duration

    public init(enabled: Bool, idleLimit: Duration) {
        self.enabled = enabled
        self.idleLimit = idleLimit
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
