/// Whether the connections nginx asks to keep (`fastcgi_keep_conn on`) are kept, and how long
/// one may stay idle between two requests before it is closed.
///
/// libfcgi alone pins a thread to every kept connection, so that nginx opening more
/// connections than there are workers queues requests behind idle ones (seconds of latency,
/// or a wedge). Here an idle kept connection holds no worker: it waits in the set all workers
/// share (``KeptConnections``), and the first free worker serves its next request.
public struct KeepConnectionPolicy: Sendable, Equatable {
    public var enabled: Bool
    /// How long a kept connection may stay idle; above nginx's `keepalive_timeout` (60 s by
    /// default), nginx closes first and never sends a request on a connection being closed.
    public var idleLimit: Duration

    public init(enabled: Bool, idleLimit: Duration) {
        self.enabled = enabled
        self.idleLimit = idleLimit
    }

    /// Every connection closed after its answer, whatever nginx asked.
    public static let closing = KeepConnectionPolicy(enabled: false, idleLimit: .zero)
}
