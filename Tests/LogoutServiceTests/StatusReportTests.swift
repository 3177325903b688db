import LogoutCore
@testable import Revocation
import Testing

@testable import LogoutService

@Suite struct StatusReportTests {
    static let report: StatusReport = {
        var counts = RevocationQueue.Counts()
        counts.queued = 9
        counts.waiting = 2
        counts.inFlight = 1
        counts.revoked = 5
        counts.rejected = 1
        counts.failed = 3
        counts.dropped = 4
        counts.lost = 6
        counts.duplicate = 7
        counts.retried = 2
        counts.expired = 1
        counts.handedOver = 8
        counts.adopted = 3
        counts.pending = 2
        counts.retrying = 0
        counts.oldestPendingAgeSeconds = 11
        var spool = JournalStatistics()
        spool.pendingRecords = 8
        spool.bytes = 4096
        spool.corrupt = 1
        spool.syncs = 20
        return StatusReport(
            startTime: 1_764_000_000, uptimeSeconds: 42, acceptedRequests: 17, activeWorkers: 1, totalWorkers: 4,
            maxActiveWorkers: 3, logouts: 12, sessionsOpened: 10, revocations: counts, queueCapacity: 10_000, spool: spool)
    }()

    @Test func jsonIsOneObjectInDocumentedOrder() {
        #expect(
            Self.report.json
                == #"{"start_time":1764000000,"uptime_seconds":42,"accepted_requests":17,"active_workers":1,"#
                + #""total_workers":4,"max_active_workers":3,"kept_requests":0,"kept_connections_idle":0,"kept_connections_expired":0,"kept_connections_evicted":0,"logouts":12,"sessions_opened":10,"revocations_queued":9,"#
                + #""revocations_duplicate":7,"revocations_in_flight":1,"revocations_revoked":5,"revocations_rejected":1,"#
                + #""revocations_failed":3,"revocations_retried":2,"revocations_expired":1,"revocations_dropped":4,"#
                + #""revocations_parked":0,"revocations_lost":6,"revocations_handed_over":8,"revocations_adopted":3,"revocations_pending":2,"#
                + #""revocations_retrying":0,"revocations_parked_now":0,"revocations_oldest_pending_age_seconds":11,"queue_capacity":10000,"#
                + #""queue_depth":2,"spool_enabled":1,"spool_pending_records":8,"spool_bytes":4096,"#
                + #""spool_corrupt_records":1,"spool_unreadable_records":0,"spool_write_errors":0,"spool_full":0,"#
                + #""spool_syncs":20,"outbox_enabled":0,"outbox_connected":0,"outbox_stored":0,"outbox_store_errors":0,"#
                + #""outbox_claimed":0,"outbox_unreadable":0,"outbox_errors":0,"outbox_depth":0,"#
                + #""outbox_oldest_pending_age_seconds":0,"peers_refused":0,"invalid_requests":0,"unknown_roles":0,"timed_out":0,"#
                + #""closed_early":0,"cookies_opened":0,"cookies_undecodable":0,"cookies_too_short":0,"#
                + #""cookies_tag_mismatch":0,"cookies_bad_plaintext":0,"backend_latency_count":0,"backend_latency_sum_ms":0,"#
                + #""outbox_claim_latency_count":0,"outbox_claim_latency_sum_ms":0}"#)
    }

    /// The text exposition format, line by line: for each metric a HELP line, then its TYPE,
    /// then one sample; names prefixed, counters (and only they) ending in `_total`; the
    /// latency histogram last, with cumulative `le` buckets ending in `+Inf`, `_sum` and `_count`.
    @Test func prometheusFollowsTheExpositionFormat() throws {
        let text = Self.report.prometheus
        #expect(text.hasSuffix("\n"))
        let all = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        let histogramStart = try #require(all.firstIndex(of: "# HELP crocante_logout_backend_latency_seconds Backend call latency."))
        let histogram = Array(all[histogramStart...])
        #expect(histogram[1] == "# TYPE crocante_logout_backend_latency_seconds histogram")
        #expect(histogram[2] == #"crocante_logout_backend_latency_seconds_bucket{le="0.005"} 0"#)
        #expect(histogram[histogram.count - 3] == #"crocante_logout_backend_latency_seconds_bucket{le="+Inf"} 0"#)
        #expect(histogram[histogram.count - 2] == "crocante_logout_backend_latency_seconds_sum 0.0")
        #expect(histogram.last == "crocante_logout_backend_latency_seconds_count 0")
        let lines = all[..<histogramStart]
        #expect(lines.count % 3 == 0)
        var names: [String] = []
        for start in stride(from: lines.startIndex, to: lines.endIndex, by: 3) {
            let help = lines[start].split(separator: " ", maxSplits: 3)
            let type = lines[start + 1].split(separator: " ")
            let sample = lines[start + 2].split(separator: " ")
            try #require(help.count == 4 && type.count == 4 && sample.count == 2, "\(lines[start...(start + 2)])")
            let name = String(help[2])
            #expect(help[0] == "#" && help[1] == "HELP" && help[3].hasSuffix("."))
            #expect(type[0] == "#" && type[1] == "TYPE" && type[2] == help[2])
            #expect(type[3] == "counter" || type[3] == "gauge")
            #expect((type[3] == "counter") == name.hasSuffix("_total"), "\(name)")
            #expect(sample[0] == help[2] && Int(sample[1]) != nil)
            #expect(name.hasPrefix("crocante_logout_") && name.allSatisfy { $0.isLowercase || $0 == "_" })
            names.append(name)
        }
        #expect(Set(names).count == names.count)
        #expect(names.contains("crocante_logout_revocations_revoked_total"))
        #expect(names.contains("crocante_logout_queue_depth"))
        #expect(lines.contains("crocante_logout_revocations_lost_total 6"))
        #expect(lines.contains("crocante_logout_spool_enabled 1"))
    }

    @Test func responsesCarryTheirContentType() {
        let json = String(decoding: Self.report.response(.json).bytes, as: UTF8.self)
        let prometheus = String(decoding: Self.report.response(.prometheus).bytes, as: UTF8.self)
        #expect(json.hasPrefix("Status: 200 OK\r\nContent-Type: application/json\r\n"))
        #expect(json.hasSuffix("\r\n\r\n" + Self.report.json))
        #expect(prometheus.hasPrefix("Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"))
        #expect(prometheus.hasSuffix("\r\n\r\n" + Self.report.prometheus))
    }
}
