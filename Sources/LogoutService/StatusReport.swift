import LogoutCore
import Revocation

/// The counters the status path shows, as php-fpm's status page shows its pool's, rendered as
/// JSON or in the Prometheus text exposition format.
public struct StatusReport: Sendable, Equatable {
    var startTime: Int
    var uptimeSeconds: Int
    var acceptedRequests: Int
    var activeWorkers: Int
    var totalWorkers: Int
    var maxActiveWorkers: Int
    var logouts: Int
    var sessionsOpened: Int
    var revocations: RevocationQueue.Counts
    var queueCapacity: Int
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
        [
            ("start_time", "Start time, seconds since the epoch", "gauge", startTime),
            ("uptime_seconds", "Seconds since start", "gauge", uptimeSeconds),
            ("accepted_requests", "FastCGI connections accepted", "counter", acceptedRequests),
            ("active_workers", "Workers serving a request now", "gauge", activeWorkers),
            ("total_workers", "Worker threads", "gauge", totalWorkers),
            ("max_active_workers", "Most workers busy at once", "gauge", maxActiveWorkers),
            ("logouts", "POST requests answered on the logout path", "counter", logouts),
            ("sessions_opened", "Logouts whose cookie held a usable session", "counter", sessionsOpened),
            ("revocations_queued", "Revocations accepted into the queue", "counter", revocations.queued),
            ("revocations_in_flight", "Backend calls running now", "gauge", revocations.inFlight),
            ("revocations_revoked", "Backend answered 2xx", "counter", revocations.revoked),
            ("revocations_rejected", "Backend answered 4xx", "counter", revocations.rejected),
            ("revocations_failed", "5xx, timeout or connection error", "counter", revocations.failed),
            ("revocations_dropped", "Not queued: queue full or closed", "counter", revocations.dropped),
            ("revocations_lost", "Given up when the shutdown drain deadline passed", "counter", revocations.lost),
            ("queue_capacity", "Revocations that may wait", "gauge", queueCapacity),
            ("queue_depth", "Revocations waiting now", "gauge", revocations.waiting),
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

    /// One JSON object, keys in the order above; also the last stdout line at a clean stop.
    public var json: String {
        "{" + figures.map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    /// Counters get the conventional `_total` suffix; every name is prefixed `crocante_logout_`.
    public var prometheus: String {
        figures.map { figure in
            let name = "crocante_logout_" + figure.name + (figure.type == "counter" ? "_total" : "")
            return "# HELP \(name) \(figure.help).\n# TYPE \(name) \(figure.type)\n\(name) \(figure.value)\n"
        }.joined()
    }

    /// The status page in `format`.
    public func response(_ format: Format) -> LogoutResponse {
        switch format {
        case .json: return LogoutResponse(status: "200 OK", body: json)
        case .prometheus: return LogoutResponse(status: "200 OK", contentType: "text/plain; version=0.0.4", body: prometheus)
        }
    }
}
