import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One user replaying their own valid cookie as fast as nginx takes it cannot crowd out other
/// users' revocations: the replayed token is queued once and its replays cost a lookup.
@Suite(.serialized)
struct ReplayTests {
    /// With a window longer than the test, the replayed token is sent once; with a 1 s window,
    /// again at most once a second (and at least once more: the window does end).
    @Test(arguments: [300, 1])
    func aReplayedCookieIsRevokedOnceAndEveryOtherUserIsDelivered(windowSeconds: Int) throws {
        let options = TestStack.Options(
            backend: ["--delay-ms", "100"],
            environment: TestStack.fastRetries.merging(["CROCANTE_DEDUP_WINDOW": "\(windowSeconds)s"]) { $1 }, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let replayed = Seal.tokens(1, "replayed")[0]
            let others = Seal.tokens(30, "other")
            let otherCookies = try Seal.sessions(others)
            let load = LoadClient(port: stack.nginxPort, cookie: try Seal.session(replayed))
            let started = ContinuousClock.now
            load.start(connections: 8)
            // Other users log out about ten times a second while the replay runs.
            var maxPending = 0
            for cookie in otherCookies {
                #expect(try stack.logout(cookie).status == 200)
                maxPending = max(maxPending, try stack.status()["revocations_pending"] ?? -1)
                usleep(100_000)
            }
            let tally = load.stop()
            let seconds = Double((ContinuousClock.now - started).components.seconds) + 0.001
            let missing = stack.waitForDelivery(of: others)
            let replayCalls = stack.backendRequests().filter { $0.bearerToken == replayed }.count
            let stopped = stack.stopResponder()
            let totals = try #require(stack.responder.finalStatus)
            print("""
                replay (window \(windowSeconds) s): \(tally.total) replays (\(Int(Double(tally.total) / seconds))/s, \(tally.statuses), \(tally.socketErrors) socket errors); \
                others delivered \(others.count - missing.count)/\(others.count); replayed token calls \(replayCalls); \
                duplicate \(totals["revocations_duplicate"] ?? -1); max pending \(maxPending)
                """)
            #expect(stopped.status == 0)
            #expect(tally.statuses.keys.sorted() == [200], "\(tally.statuses)")
            #expect(tally.total >= 200, "the replay was too slow to mean anything: \(tally.total)")
            #expect(missing.isEmpty, "\(missing.count) other users' tokens never reached the backend")
            if windowSeconds > Int(seconds) {
                #expect(replayCalls == 1, "the window outlasts the test: one call")
            } else {
                // One call per window at most (each window starts after a call's verdict), and more than one.
                #expect(replayCalls >= 2 && replayCalls <= Int(seconds) / windowSeconds + 1, "\(replayCalls) calls in \(seconds) s")
            }
            #expect((totals["revocations_duplicate"] ?? 0) >= (tally.statuses[200] ?? 0) - replayCalls)
            #expect(totals["revocations_queued"] == others.count + replayCalls)
            #expect(maxPending >= 0 && maxPending < others.count, "pending grew to \(maxPending)")
            #expect(totals["revocations_lost"] == 0 && totals["revocations_dropped"] == 0)
        }
    }
}
