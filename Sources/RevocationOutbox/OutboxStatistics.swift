import Revocation

/// What this host's outbox has done, for the status page. Counters only grow; `connected`,
/// `inFlight`, `depth` and `oldestPendingAgeSeconds` are gauges.
public struct OutboxStatistics: Sendable, Equatable {
    /// 1 while the delivery connection to PostgreSQL is up.
    public var connected = false
    /// Revocations this host wrote to the table (new rows, or rows due again after the dedup window).
    public var stored = 0
    /// Writes refused or failed: the queue retries them, the spool keeps them meanwhile.
    public var storeErrors = 0
    /// Rows this host claimed for a backend call (any host's).
    public var claimed = 0
    public var revoked = 0
    public var rejected = 0
    /// Backend attempts that failed, and of them those tried again later.
    public var failed = 0
    public var retried = 0
    /// Rows given up: the JWT `exp` or the maximum age passed first.
    public var expired = 0
    /// Claimed rows no configured secret opens: left for a host that holds their secret.
    public var unreadable = 0
    /// Statements or connections that failed.
    public var errors = 0
    /// Backend calls running now.
    public var inFlight = 0
    /// Rows pending fleet-wide, and the age of the oldest, when last measured (every second).
    public var depth = 0
    public var oldestPendingAgeSeconds = 0
    /// How long a claim statement took.
    public var claimLatency = LatencyHistogram()
    /// How long a backend call took.
    public var backendLatency = LatencyHistogram()

    public init() {}
}
