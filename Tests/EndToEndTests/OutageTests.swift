import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A backend that is down for a while (refusing, blackholed, or answering 503 with Retry-After)
/// gets every distinct token once it is back: retries, not one attempt.
@Suite(.serialized)
struct OutageTests {
    /// Steady logouts against a port where nothing listens, then a stand-in starts there.
    @Test func aRefusingBackendGetsEveryTokenOnceItIsUp() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(40, "refused")
            for cookie in try Seal.sessions(tokens) {
                #expect(try stack.logout(cookie).status == 200)
                usleep(50_000)
            }
            let during = try stack.status()
            #expect((during["revocations_failed"] ?? 0) > 0 && (during["revocations_retried"] ?? 0) > 0, "\(during)")
            try stack.startBackend(name: "up")
            let missing = stack.waitForDelivery(of: tokens, server: "up")
            let stopped = stack.stopResponder()
            let totals = try #require(stack.responder.finalStatus)
            print("outage/refused: delivered \(tokens.count - missing.count)/\(tokens.count); failed attempts \(totals["revocations_failed"] ?? -1), retried \(totals["revocations_retried"] ?? -1)")
            #expect(stopped.status == 0)
            #expect(missing.isEmpty, "\(missing.count) tokens never reached the backend")
            #expect(totals["revocations_revoked"] == tokens.count)
            #expect(totals["revocations_lost"] == 0 && totals["revocations_dropped"] == 0)
        }
    }

    /// An outage with more distinct logouts than memory holds: past `CROCANTE_QUEUE_CAPACITY`
    /// tokens park in the spool instead of being dropped; a stop hands them over, and the
    /// successor delivers every one once the backend is up, through the same small memory.
    @Test func tokensPastTheQueueCapacityParkInTheSpoolAndAreDelivered() throws {
        let environment = TestStack.fastRetries.merging([
            "CROCANTE_QUEUE_CAPACITY": "4", "CROCANTE_BACKEND_CONCURRENCY": "2", "CROCANTE_DRAIN_TIMEOUT_MS": "200",
        ]) { $1 }
        let options = TestStack.Options(backend: nil, environment: environment, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(60, "parked")
            for cookie in try Seal.sessions(tokens) {
                #expect(try stack.logout(cookie).status == 200)
            }
            let during = try stack.status()
            #expect(during["revocations_queued"] == tokens.count, "\(during)")
            #expect((during["revocations_parked_now"] ?? 0) >= tokens.count - 4 - 2, "\(during)")
            #expect(during["revocations_dropped"] == 0 && during["revocations_pending"]! <= 4, "\(during)")
            let first = stack.stopResponder()
            let handedOver = try #require(stack.responder.finalStatus)["revocations_handed_over"]
            #expect(first.status == 0 && handedOver == tokens.count)

            try stack.startBackend(name: "up")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let missing = stack.waitForDelivery(of: tokens, server: "up")
            let stopped = stack.stopResponder()
            let totals = try #require(stack.responder.finalStatus)
            print(
                "outage/parked: \(during["revocations_parked"] ?? -1) parked of \(tokens.count) with capacity 4; handed over \(handedOver ?? -1); "
                    + "successor adopted \(totals["revocations_adopted"] ?? -1), parked \(totals["revocations_parked"] ?? -1), delivered \(tokens.count - missing.count)")
            #expect(stopped.status == 0)
            #expect(missing.isEmpty, "\(missing.count) tokens never reached the backend")
            #expect(totals["revocations_adopted"] == tokens.count && (totals["revocations_parked"] ?? 0) > 0)
            #expect(totals["revocations_revoked"] == tokens.count)
            #expect(totals["revocations_lost"] == 0 && totals["revocations_dropped"] == 0)
            #expect(TestStack.segmentFiles(in: spool).count <= 1, "finished segments are deleted")
            stack.expectNoSecretsInClear(inSpool: spool)
        }
    }

    /// A blackhole (connect succeeds, no answer) times out call after call; replaced by a good
    /// stand-in on the same port, it gets every token.
    @Test func aBlackholedBackendReplacedByAGoodOneGetsEveryToken() throws {
        let options = TestStack.Options(
            backend: ["--behavior", "blackhole"],
            environment: TestStack.fastRetries.merging(["CROCANTE_BACKEND_TIMEOUT_MS": "300"]) { $1 }, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(30, "blackhole")
            for cookie in try Seal.sessions(tokens) {
                #expect(try stack.logout(cookie).status == 200)
                usleep(30_000)
            }
            // Every token has been tried against the blackhole, and some timed out.
            #expect(stack.waitForDelivery(of: tokens, server: "backend").isEmpty)
            #expect(Harness.waitUntil { ((try? stack.status())?["revocations_failed"] ?? 0) > 0 })
            stack.stopBackend()
            try stack.startBackend(name: "good")
            let missing = stack.waitForDelivery(of: tokens, server: "good")
            let stopped = stack.stopResponder()
            let totals = try #require(stack.responder.finalStatus)
            print("outage/blackhole: delivered \(tokens.count - missing.count)/\(tokens.count); failed attempts \(totals["revocations_failed"] ?? -1)")
            #expect(stopped.status == 0)
            #expect(missing.isEmpty, "\(missing.count) tokens never reached the good backend")
            #expect(totals["revocations_revoked"] == tokens.count)
            #expect(totals["revocations_lost"] == 0)
        }
    }

    /// 503 with `Retry-After: 1` on each token's first call: its second call comes at least a
    /// second after the first, by the backend's own timestamps.
    @Test func retryAfterIsHonoured() throws {
        let count = 6
        let options = TestStack.Options(
            backend: ["--first", "\(count)", "--first-status", "503", "--first-header", "Retry-After: 1"],
            // The cap above the Retry-After, so the delay is the backend's and not clamped.
            environment: ["CROCANTE_RETRY_BASE_MS": "50", "CROCANTE_RETRY_MAX_MS": "5000"], startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(count, "retry-after")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(Harness.waitUntil { stack.backendRequests().count >= 2 * count })
            let requests = stack.backendRequests()
            var gaps: [Int] = []
            for token in tokens {
                let times = requests.filter { $0.bearerToken == token }.compactMap(\.at)
                try #require(times.count >= 2, "token called \(times.count) time(s)")
                gaps.append(Int(times[1] - times[0]))
            }
            let stopped = stack.stopResponder()
            let totals = try #require(stack.responder.finalStatus)
            print("outage/503 Retry-After 1: delivered \(Set(requests.compactMap(\.bearerToken)).count)/\(count); gaps ms \(gaps)")
            #expect(stopped.status == 0)
            #expect(gaps.allSatisfy { $0 >= 995 }, "a retry came before its Retry-After: \(gaps) ms")
            #expect(totals["revocations_revoked"] == count)
            #expect(totals["revocations_failed"] == count)
        }
    }
}
