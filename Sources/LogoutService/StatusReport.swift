import LogoutCore
import Revocation
import RevocationOutbox

/// The counters the status path shows, as php-fpm's status page shows its pool's, rendered as
/// JSON or in the Prometheus text exposition format.
public struct StatusReport: Sendable, Equatable {
    var startTime: Int
    var uptimeSeconds: Int
    var acceptedRequests: Int
    var activeWorkers: Int
    var totalWorkers: Int
    var maxActiveWorkers: Int
    /// Requests on kept connections; kept connections idle now, closed idle, closed for room.
    var keptRequests = 0
    var keptIdle = 0
    var keptExpired = 0
    var keptEvicted = 0
    var logouts: Int
    var sessionsOpened: Int
    var revocations: RevocationQueue.Counts
    var queueCapacity: Int
    /// The spool's counters; nil when running memory-only.
    var spool: JournalStatistics?
    /// The fleet outbox's counters; nil without `CROCANTE_OUTBOX`.
    var outbox: OutboxStatistics? = nil
    /// Connections closed unserved (issue 10), by reason.
    var peersRefused = 0
    var invalidRequests = 0
    var unknownRoles = 0
    var timedOut = 0
    var closedEarly = 0
    /// Session cookie values present, by what opening them gave.
    var cookies = SessionMismatchDetector.Counts()

    /// How the page is written.
    public enum Format: Sendable, Equatable {
        case json
        /// The Prometheus text exposition format, version 0.0.4.
        case prometheus

        /// `?format=prometheus` among the query's parameters asks for Prometheus; anything else, JSON.
        init(query: String) {
            self = query.split(separator: "&").contains("format=prometheus") ? .prometheus : .json
        }
    }

    /// Name, help text, Prometheus type and value of every figure, in the order shown.
    private var figures: [(name: String, help: String, type: String, value: Int)] {
        let spool = self.spool ?? JournalStatistics()
        let outbox = self.outbox ?? OutboxStatistics()
        return [
            ("start_time", "Start time, seconds since the epoch", "gauge", startTime),
            ("uptime_seconds", "Seconds since start", "gauge", uptimeSeconds),
            ("accepted_requests", "FastCGI requests begun: connections accepted, plus requests on kept connections", "counter", acceptedRequests),
            ("active_workers", "Workers serving a request now", "gauge", activeWorkers),
            ("total_workers", "Worker threads", "gauge", totalWorkers),
            ("max_active_workers", "Most workers busy at once", "gauge", maxActiveWorkers),
            ("kept_requests", "Requests served on a kept connection (CROCANTE_KEEP_CONNECTIONS=on)", "counter", keptRequests),
            ("kept_connections_idle", "Kept connections idle now, waiting for their next request", "gauge", keptIdle),
            ("kept_connections_expired", "Kept connections closed after CROCANTE_KEEPALIVE_IDLE_MS idle", "counter", keptExpired),
            ("kept_connections_evicted", "Kept connections closed, oldest first, for room: too many kept, or out of descriptors", "counter", keptEvicted),
            ("logouts", "POST requests answered on the logout path", "counter", logouts),
            ("sessions_opened", "Logouts whose cookie held a usable session", "counter", sessionsOpened),
            ("revocations_queued", "Revocations accepted for delivery", "counter", revocations.queued),
            ("revocations_duplicate", "Not queued again: the token was pending or revoked within the dedup window", "counter", revocations.duplicate),
            ("revocations_in_flight", "Backend calls running now", "gauge", revocations.inFlight),
            ("revocations_revoked", "Backend answered 2xx", "counter", revocations.revoked),
            ("revocations_rejected", "Backend answered a final 4xx", "counter", revocations.rejected),
            ("revocations_failed", "Attempts that failed: 408, 425, 429, 5xx, timeout or connection error", "counter", revocations.failed),
            ("revocations_retried", "Failed attempts that are tried again", "counter", revocations.retried),
            ("revocations_expired", "Given up: the token's JWT exp or the maximum age passed", "counter", revocations.expired),
            ("revocations_dropped", "Not queued: memory full and no spool (or the spool refused it too), or the queue closed", "counter", revocations.dropped),
            ("revocations_parked", "Accepted while memory was full and kept in the spool only until read back", "counter", revocations.parked),
            ("revocations_lost", "Pending at shutdown with no spool to keep them, or parked and unreadable", "counter", revocations.lost),
            ("revocations_handed_over", "Pending at shutdown, left in the spool for a successor", "counter", revocations.handedOver),
            ("revocations_adopted", "Taken over from the spool of a stopped or crashed process", "counter", revocations.adopted),
            ("revocations_pending", "Held in memory now: waiting for a slot or a retry", "gauge", revocations.pending),
            ("revocations_retrying", "Held in memory now for a retry", "gauge", revocations.retrying),
            ("revocations_parked_now", "Parked in the spool now, waiting for room in memory", "gauge", revocations.parkedNow),
            ("revocations_oldest_pending_age_seconds", "Age of the oldest revocation not yet delivered", "gauge", revocations.oldestPendingAgeSeconds),
            ("queue_capacity", "Revocations that may wait in memory", "gauge", queueCapacity),
            ("queue_depth", "Revocations waiting for their first attempt now", "gauge", revocations.waiting),
            ("spool_enabled", "1 when revocations are spooled to disk, 0 when memory only", "gauge", self.spool == nil ? 0 : 1),
            ("spool_pending_records", "Records in the spool not yet completed", "gauge", spool.pendingRecords),
            ("spool_bytes", "Bytes of the spool's segment files", "gauge", spool.bytes),
            ("spool_corrupt_records", "Records cut off or skipped at recovery: torn tail, bad length or checksum", "counter", spool.corrupt),
            ("spool_unreadable_records", "Records no configured secret opens", "counter", spool.unreadable),
            ("spool_write_errors", "Appends that failed: disk full, read-only, I/O error, or the size limit", "counter", spool.writeErrors),
            ("spool_full", "Appends refused at the size limit", "counter", spool.full),
            ("spool_syncs", "fdatasync calls", "counter", spool.syncs),
            ("outbox_enabled", "1 when revocations go through the fleet's PostgreSQL outbox", "gauge", self.outbox == nil ? 0 : 1),
            ("outbox_connected", "1 while the outbox's delivery connection answers", "gauge", outbox.connected ? 1 : 0),
            ("outbox_stored", "Revocations this host wrote to the outbox", "counter", outbox.stored),
            ("outbox_store_errors", "Outbox writes that failed; the queue retries them and the spool keeps them", "counter", outbox.storeErrors),
            ("outbox_claimed", "Outbox rows this host claimed for a backend call", "counter", outbox.claimed),
            ("outbox_unreadable", "Claimed rows no configured secret opens, left for another host", "counter", outbox.unreadable),
            ("outbox_errors", "Outbox statements or connections that failed", "counter", outbox.errors),
            ("outbox_depth", "Rows pending in the outbox, fleet-wide, measured every second", "gauge", outbox.depth),
            ("outbox_oldest_pending_age_seconds", "Age of the oldest row pending in the outbox", "gauge", outbox.oldestPendingAgeSeconds),
            ("peers_refused", "Connections from peers outside the allowlist, closed", "counter", peersRefused),
            ("invalid_requests", "FastCGI requests the record check refused, closed", "counter", invalidRequests),
            ("unknown_roles", "Requests for a role other than responder, answered FCGI_UNKNOWN_ROLE", "counter", unknownRoles),
            ("timed_out", "Connections without complete params within the request timeout, closed", "counter", timedOut),
            ("closed_early", "Connections closed by the peer before their params were complete", "counter", closedEarly),
            ("cookies_opened", "Session cookie values that opened", "counter", cookies.opened),
            ("cookies_undecodable", "Session cookie values that are not base64url", "counter", cookies.notBase64url),
            ("cookies_too_short", "Session cookie values too short to hold iv and tag", "counter", cookies.tooShort),
            ("cookies_tag_mismatch", "Session cookie values no configured secret verifies", "counter", cookies.tagMismatch),
            ("cookies_bad_plaintext", "Session cookie values whose plaintext holds no usable token", "counter", cookies.badPlaintext),
        ]
    }

    /// One JSON object, keys in the order above, then the backend latency's count and sum;
    /// also the last stdout line at a clean stop.
    public var json: String {
        let latency = revocations.latency
        let claims = outbox?.claimLatency ?? LatencyHistogram()
        return "{" + figures.map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",")
            + ",\"backend_latency_count\":\(latency.count),\"backend_latency_sum_ms\":\(Int(latency.sum * 1000))"
            + ",\"outbox_claim_latency_count\":\(claims.count),\"outbox_claim_latency_sum_ms\":\(Int(claims.sum * 1000))}"
    }

    /// Counters get the conventional `_total` suffix; every name is prefixed `crocante_logout_`.
    /// The backend latency is a histogram (`_bucket` with `le`, `_sum`, `_count`).
    public var prometheus: String {
        let plain = figures.map { figure in
            let name = "crocante_logout_" + figure.name + (figure.type == "counter" ? "_total" : "")
            return "# HELP \(name) \(figure.help).\n# TYPE \(name) \(figure.type)\n\(name) \(figure.value)\n"
        }.joined()
        let backend = Self.histogram("crocante_logout_backend_latency_seconds", help: "Backend call latency.", revocations.latency)
        let claims = outbox.map {
            Self.histogram("crocante_logout_outbox_claim_latency_seconds", help: "Outbox claim statement latency.", $0.claimLatency)
        }
        return plain + backend + (claims ?? "")
    }

    /// A histogram: `_bucket` with cumulative `le` bounds ending in `+Inf`, then `_sum` and `_count`.
    private static func histogram(_ name: String, help: String, _ latency: LatencyHistogram) -> String {
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (bound, count) in zip(LatencyHistogram.bounds, latency.cumulative) {
            text += "\(name)_bucket{le=\"\(bound)\"} \(count)\n"
        }
        return text + "\(name)_bucket{le=\"+Inf\"} \(latency.count)\n\(name)_sum \(latency.sum)\n\(name)_count \(latency.count)\n"
    }

    /// The status page in `format`.
    public func response(_ format: Format) -> LogoutResponse {
        switch format {
        case .json: return LogoutResponse(status: "200 OK", body: json)
        case .prometheus: return LogoutResponse(status: "200 OK", contentType: "text/plain; version=0.0.4", body: prometheus)
        }
    }
}

extension RevocationQueue.Counts {
    /// With an outbox the queue's calls only store: the backend's verdicts, attempts and latency
    /// are the outbox's. Expiries add up: the queue gives up on a token it could not store in
    /// time, the outbox on a row nobody could deliver in time.
    func delivered(by outbox: OutboxStatistics) -> Self {
        var counts = self
        counts.revoked = outbox.revoked
        counts.rejected = outbox.rejected
        counts.failed = outbox.failed
        counts.retried = outbox.retried
        counts.expired = expired + outbox.expired
        counts.inFlight = outbox.inFlight
        counts.latency = outbox.backendLatency
        return counts
    }
}
