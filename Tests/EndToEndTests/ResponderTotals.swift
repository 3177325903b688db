import Foundation

/// What the responder counted, decoded from the status JSON it prints as its last stdout line
/// when it stops (the keys of `GET /crocante-logout/status`). Totals not given in a test's
/// expectation are 0.
struct ResponderTotals: Equatable, Decodable, CustomStringConvertible {
    var requests = 0
    var queued = 0
    var revoked = 0
    var rejected = 0
    var failed = 0
    var dropped = 0
    var lost = 0

    enum CodingKeys: String, CodingKey {
        case requests = "accepted_requests"
        case queued = "revocations_queued"
        case revoked = "revocations_revoked"
        case rejected = "revocations_rejected"
        case failed = "revocations_failed"
        case dropped = "revocations_dropped"
        case lost = "revocations_lost"
    }

    init(requests: Int = 0, queued: Int = 0, revoked: Int = 0, rejected: Int = 0, failed: Int = 0, dropped: Int = 0, lost: Int = 0) {
        (self.requests, self.queued, self.revoked, self.rejected) = (requests, queued, revoked, rejected)
        (self.failed, self.dropped, self.lost) = (failed, dropped, lost)
    }

    /// Nil unless the last line of `stdout` is the status JSON with every total.
    init?(finalStatusLine stdout: String) {
        guard let line = stdout.split(separator: "\n").last,
            let totals = try? JSONDecoder().decode(Self.self, from: Data(line.utf8))
        else { return nil }
        self = totals
    }

    var description: String {
        "requests=\(requests) queued=\(queued) revoked=\(revoked) rejected=\(rejected) failed=\(failed) dropped=\(dropped) lost=\(lost)"
    }
}
