import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nginx.conf.example's scale-out upstream across hosts made of network namespaces: under load
/// every answer is 200 and every revocation reaches the stand-in, also while one host's responder
/// is killed and another's link is down; the dead host's spool is delivered when it comes back.
@Suite(.serialized, .enabled(if: TestNetwork.isAvailable, "needs root and `ip netns add` (network namespaces as test hosts)"))
struct ScaleOutTests {
    /// Logs out `count` fresh sessions through nginx from `threads` threads and returns the sender.
    private func sender(_ stack: ScaleOutStack, _ count: Int, _ label: String, pause: Duration = .zero) throws -> (TokenSender, [String]) {
        let tokens = Seal.tokens(count, label)
        return (TokenSender(endpoint: stack.endpoint, tokens: tokens, cookies: try Seal.sessions(tokens), pause: pause), tokens)
    }

    private func sleep(_ duration: Duration) {
        usleep(UInt32(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000))
    }

    @Test func failoverAcrossHostsLosesNoAnswerAndNoRevocation() throws {
        try withScaleOutStack { stack in
            let (a, b) = (stack.responderHosts[0], stack.responderHosts[1])

            // 1. All hosts up: every answer 200, every token delivered, every host serving.
            let (steady, steadyTokens) = try sender(stack, 600, "steady")
            steady.start(threads: 8)
            #expect(steady.finish().values.allSatisfy { $0 == 200 }, "steady load: \(steady.tally)")
            #expect(steady.sent == steadyTokens.count)
            #expect(stack.waitForDelivery(of: steadyTokens).isEmpty)
            let steadyShare = stack.responderHosts.map { stack.deliveredTokens(from: $0).count }
            #expect(steadyShare.allSatisfy { $0 > 0 }, "tokens delivered per host: \(steadyShare)")

            // 2. Under load: host a cannot reach the backend (so what it accepts stays in its
            // spool), then its responder is killed; then host b's link goes down, and comes back.
            try stack.network.setBlackhole(from: a, to: ScaleOutStack.backendAddress, true)
            let (failing, _) = try sender(stack, 6000, "failover", pause: .milliseconds(20))
            failing.start(threads: 8)
            sleep(.seconds(2))
            stack.responder(a).send(SIGKILL)
            #expect(stack.responder(a).waitForExit(timeout: .seconds(10)) != nil)
            sleep(.seconds(1))
            try stack.network.setLink(b, up: false)
            sleep(.seconds(6))
            try stack.network.setLink(b, up: true)
            sleep(.seconds(2))
            failing.stop()
            let failingTally = failing.tally
            #expect(failingTally.keys.sorted() == [200], "answers during failover (-1: socket error): \(failingTally)")
            let answered = failing.answeredTokens

            // What b and c accepted is delivered; what a accepted waits in its spool.
            stack.waitForQuiet()
            let pendingOnA = Set(answered).subtracting(stack.deliveredTokens())
            #expect(!pendingOnA.isEmpty, "host a's spool should hold the tokens it accepted before it was killed")

            // 3. Host a comes back on the same spool and delivers them.
            try stack.network.setBlackhole(from: a, to: ScaleOutStack.backendAddress, false)
            try stack.startResponder(a)
            #expect(stack.waitForDelivery(of: answered).isEmpty, "every token answered 200 reaches the backend")
            let recovered = pendingOnA.intersection(stack.deliveredTokens(from: a))
            #expect(recovered == pendingOnA, "recovered \(recovered.count) of \(pendingOnA.count) from host a's spool")

            // 4. All three serve again.
            let (after, afterTokens) = try sender(stack, 300, "after")
            after.start(threads: 4)
            #expect(after.finish().values.allSatisfy { $0 == 200 }, "after recovery: \(after.tally)")
            #expect(stack.waitForDelivery(of: afterTokens).isEmpty)
            let afterShare = stack.responderHosts.map { host in Set(afterTokens).intersection(stack.deliveredTokens(from: host)).count }

            // 5. Only nginx may speak FastCGI to a responder: a complete request from the backend's
            // host gets no byte back (CROCANTE_ALLOWED_CLIENTS).
            let c = stack.responderHosts[2]
            let request = stack.directory.appendingPathComponent("fastcgi-request")
            try Data(FastCGIClient.request(cookie: nil)).write(to: request)
            // bash's /dev/tcp/HOST/PORT: connect, send the request, count the bytes answered.
            let target = "/dev/tcp/" + stack.upstreams[c]!.replacingOccurrences(of: ":", with: "/")
            let intruder = try stack.shell(
                in: "backend", "exec 3<>\(target) || exit 9; cat \(request.path) >&3 2>/dev/null; timeout 5 cat <&3 2>/dev/null | wc -c")
            let answeredBytes = intruder.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(intruder.status == 0 && answeredBytes == "0", "from the backend's host: \(intruder)")

            for host in [a, c] {
                stack.responder(host).send(SIGTERM)
                #expect(stack.responder(host).waitForExit() == 0)
            }
            let adopted = stack.responder(a).finalStatus?["revocations_adopted"] ?? -1
            #expect(adopted >= pendingOnA.count, "host a's second run adopted \(adopted) records from its spool")
            let refused = stack.responder(c).finalStatus?["peers_refused"] ?? -1
            #expect(refused == 1, "host c refused \(refused) peers")

            let passages = stack.passages()
            let failedOver = passages.filter { $0.upstreams.count > 1 }
            let slowest = passages.map(\.seconds).max() ?? 0
            let failedOverDetail = failedOver.map { "\($0.seconds)s \($0.upstreams.joined(separator: ">"))" }.joined(separator: "; ")
            // The counts the README and the issue's closing note quote.
            print(
                """
                scale-out: steady \(steadyTokens.count) requests, per host \(steadyShare); failover \(failingTally.values.reduce(0, +)) \
                requests \(failingTally), \(answered.count) answered 200, non-2xx \(failingTally.filter { $0.key != 200 }.values.reduce(0, +)); \
                \(failedOver.count) passed on to another host (\(failedOverDetail)), slowest \(slowest) s; pending on a \(pendingOnA.count), recovered \
                \(recovered.count), adopted \(adopted); after \(afterTokens.count) requests, per host \(afterShare); \
                nginx: refused \(stack.nginxErrors(containing: "(111: Connection refused)")), \
                connect timeouts \(stack.nginxErrors(containing: "timed out) while connecting")), \
                unreachable \(stack.nginxErrors(containing: "(113: No route to host)")), \
                other timeouts \(stack.nginxErrors(containing: "timed out) while") - stack.nginxErrors(containing: "timed out) while connecting")), \
                no live upstreams \(stack.nginxErrors(containing: "no live upstreams")); backend records \(stack.backendRequests().count)
                """)
        }
    }

    /// The same hosts sharing one PostgreSQL outbox on a host of its own: host a cannot reach the
    /// backend, so the rows it stores are claimed, failed and retried by every host; a is killed
    /// with SIGKILL and never comes back, b's link goes down and up under load; the survivors
    /// deliver every token answered 200, a's included, with no restart of a.
    @Test(.enabled(if: PostgresServer.isAvailable, "needs a PostgreSQL server (scripts/install-deps)"))
    func aHostLostForGoodLosesNoRevocationWithTheOutbox() throws {
        try withScaleOutStack(outbox: true) { stack in
            let (a, b) = (stack.responderHosts[0], stack.responderHosts[1])
            let database = try #require(stack.database)
            let pending = "SELECT count(*) FROM crocante_outbox WHERE done_at IS NULL"

            try stack.network.setBlackhole(from: a, to: ScaleOutStack.backendAddress, true)
            let (before, _) = try sender(stack, 900, "outbox-before")
            before.start(threads: 6)
            #expect(before.finish().values.allSatisfy { $0 == 200 }, "before the kill: \(before.tally)")
            // What the fleet holds is in the table before a dies; a holds leases on some of it.
            let stored = "SELECT count(*) FROM crocante_outbox"
            #expect(Harness.waitUntil { (try? database.count(stored)) ?? 0 >= before.answeredTokens.count })
            let aPid = stack.responder(a).pid
            let heldByA = "SELECT count(*) FROM crocante_outbox WHERE claimed_by LIKE '%/\(aPid)' AND done_at IS NULL"
            _ = Harness.waitUntil { ((try? database.count(heldByA)) ?? 0) > 0 }
            let leasesAtKill = try database.count(heldByA)
            stack.responder(a).send(SIGKILL)
            #expect(stack.responder(a).waitForExit(timeout: .seconds(10)) != nil)

            let (during, _) = try sender(stack, 6000, "outbox-during", pause: .milliseconds(20))
            during.start(threads: 8)
            sleep(.seconds(2))
            try stack.network.setLink(b, up: false)
            sleep(.seconds(6))
            try stack.network.setLink(b, up: true)
            sleep(.seconds(2))
            during.stop()
            let answered = before.answeredTokens + during.answeredTokens
            #expect(during.tally.keys.sorted() == [200], "answers with a dead and b cut off: \(during.tally)")
            let missing = stack.waitForDelivery(of: answered, timeout: .seconds(90))
            #expect(Harness.waitUntil(timeout: .seconds(30)) { (try? database.count(pending)) == 0 })
            let deliveredByA = Set(answered).intersection(stack.deliveredTokens(from: a)).count
            let perHost = stack.responderHosts.map { stack.deliveredTokens(from: $0).count }
            print(
                "scale-out/outbox: answered \(answered.count) (\(before.answeredTokens.count) before a was killed holding \(leasesAtKill) leases), revoked \(answered.count - missing.count), lost \(missing.count); delivered per host \(perHost), by a \(deliveredByA); rows pending \((try? database.count(pending)) ?? -1)")
            #expect(missing.isEmpty, "\(missing.count) tokens answered 200 never reached the backend, host a never restarted")
            #expect(deliveredByA == 0, "host a cannot reach the backend")
            for host in stack.responderHosts.dropFirst() {
                stack.responder(host).send(SIGTERM)
                #expect(stack.responder(host).waitForExit() == 0)
                #expect(stack.responder(host).finalStatus?["revocations_lost"] == 0)
            }
        }
    }
}
