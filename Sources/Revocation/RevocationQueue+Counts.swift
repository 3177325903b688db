extension RevocationQueue {
    /// The queue's counters at one moment, for the status page and the final report.
    /// Counters only grow; `waiting`, `retrying`, `pending`, `inFlight`, `parkedNow` and
    /// `oldestPendingAgeSeconds` are gauges.
    public struct Counts: Sendable, Equatable {
        /// Tokens accepted from logouts (not duplicates, not dropped).
        public var queued = 0
        /// Tokens not queued because the same token was pending or finished within the dedup window.
        public var duplicate = 0
        /// Backend answered 2xx.
        public var revoked = 0
        /// Backend answered a final 4xx.
        public var rejected = 0
        /// Written to the fleet's outbox (CROCANTE_OUTBOX), which delivers them from there.
        public var stored = 0
        /// Attempts that failed (408, 425, 429, 5xx, timeout, connection error), retried or not.
        public var failed = 0
        /// Failed attempts that will be tried again.
        public var retried = 0
        /// Given up: the token's JWT `exp` or the maximum age passed before a verdict.
        public var expired = 0
        /// Not queued: memory full and no journal (or the journal refused it too), or the queue closed.
        public var dropped = 0
        /// Accepted while memory was full and kept in the journal only, to be read back as room frees.
        public var parked = 0
        /// Pending at the end of the shutdown drain with no journal record, or parked and not
        /// readable back (such a record stays in the journal for a successor): gone from here.
        public var lost = 0
        /// Pending at the end of the shutdown drain and kept by the journal for a successor.
        public var handedOver = 0
        /// Revocations taken over from orphaned journal segments.
        public var adopted = 0
        /// Not yet tried: waiting for a call slot.
        public var waiting = 0
        /// Tried and failed, or adopted: waiting for their time or a slot.
        public var retrying = 0
        /// `waiting + retrying`: revocations held in memory, calls in flight not counted.
        public var pending = 0
        /// Backend calls running now.
        public var inFlight = 0
        /// Parked in the journal now, their tokens not in memory.
        public var parkedNow = 0
        /// Seconds since the logout of the oldest revocation in memory, in flight or parked first; 0 when none.
        public var oldestPendingAgeSeconds = 0
        /// Backend call latency.
        public var latency = LatencyHistogram()

        public init() {}
    }
}
