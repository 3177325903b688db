import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a responder accepted survives it: killed, stopped, or restarted under load, its
/// successor on the same spool delivers every token once the backend is up.
@Suite(.serialized)
struct CrashRecoveryTests {
    /// SIGKILL while logouts stream in and the backend is down: every logout answered 200 was
    /// on disk, and the successor delivers all of them.
    @Test func aKilledRespondersTokensAreDeliveredByItsSuccessor() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(400, "killed")
            let sender = TokenSender(port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens))
            sender.start(threads: 4)
            #expect(Harness.waitUntil { sender.sent >= 100 })
            stack.stopResponder(SIGKILL)
            sender.stop()
            let answered = sender.answeredTokens
            stack.expectNoSecretsInClear(inSpool: spool)
            #expect(!TestStack.segmentFiles(in: spool).isEmpty)
            try stack.startBackend(name: "up")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let missing = stack.waitForDelivery(of: answered)
            let successor = try stack.status()
            let stopped = stack.stopResponder()
            print("crash/SIGKILL: delivered \(answered.count - missing.count)/\(answered.count) answered 200 (\(sender.tally)); adopted \(successor["revocations_adopted"] ?? -1)")
            #expect(answered.count >= 100)
            #expect(missing.isEmpty, "\(missing.count) tokens answered 200 were never delivered")
            #expect(stopped.status == 0)
            #expect((successor["revocations_adopted"] ?? 0) >= answered.count)
        }
    }

    /// SIGTERM with the backend down: nothing counted lost, everything pending handed over and
    /// left on disk; the successor delivers it.
    @Test func aStoppedRespondersPendingTokensAreHandedOver() throws {
        let options = TestStack.Options(
            backend: nil, environment: TestStack.fastRetries.merging(["CROCANTE_DRAIN_TIMEOUT_MS": "500"]) { $1 }, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(30, "handover")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(Harness.waitUntil { ((try? stack.status())?["revocations_failed"] ?? 0) > 0 })
            let stopped = stack.stopResponder()
            let first = try #require(stack.responder.finalStatus)
            #expect(stopped.status == 0)
            #expect(first["revocations_lost"] == 0)
            #expect(first["revocations_handed_over"] == tokens.count, "\(first)")
            stack.expectNoSecretsInClear(inSpool: spool)
            try stack.startBackend(name: "up")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let missing = stack.waitForDelivery(of: tokens, server: "up")
            let again = stack.stopResponder()
            let second = try #require(stack.responder.finalStatus)
            print("crash/SIGTERM: handed over \(first["revocations_handed_over"] ?? -1), lost \(first["revocations_lost"] ?? -1); successor delivered \(tokens.count - missing.count)/\(tokens.count), adopted \(second["revocations_adopted"] ?? -1)")
            #expect(missing.isEmpty, "\(missing.count) handed-over tokens never delivered")
            #expect(again.status == 0)
            #expect(second["revocations_adopted"] == tokens.count)
            #expect(second["revocations_lost"] == 0)
        }
    }

    /// Restarts with the socket held (as under systemd) while the backend goes down and comes
    /// back: every answer is 200 and every token answered reaches the backend.
    @Test func restartsUnderLoadWhileTheBackendFlaps() throws {
        let options = TestStack.Options(
            environment: TestStack.fastRetries.merging(["CROCANTE_DRAIN_TIMEOUT_MS": "300"]) { $1 }, listen: .systemdSocket,
            startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(2000, "flap")
            let sender = TokenSender(port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens), pause: .milliseconds(20))
            sender.start(threads: 4)
            for round in 0..<3 {
                let before = sender.sent
                #expect(Harness.waitUntil { sender.sent >= before + 40 })
                stack.stopBackend()
                #expect(Harness.waitUntil { sender.sent >= before + 80 })
                #expect(stack.stopResponder().status == 0)
                try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
                #expect(Harness.waitUntil { sender.sent >= before + 120 })
                try stack.startBackend(name: "flap-\(round)")
            }
            sender.stop()
            let answered = sender.answeredTokens
            let missing = stack.waitForDelivery(of: answered)
            #expect(stack.stopResponder().status == 0)
            let finals = stack.responders.map { $0.finalStatus ?? [:] }
            let lost = finals.map { $0["revocations_lost"] ?? -1 }.reduce(0, +)
            print("restart/flap: \(stack.responders.count) responders, answers \(sender.tally); delivered \(answered.count - missing.count)/\(answered.count); lost \(lost)")
            #expect(sender.tally.keys.sorted() == [200], "answers: \(sender.tally)")
            #expect(missing.isEmpty, "\(missing.count) tokens answered 200 were never delivered")
            #expect(lost == 0)
        }
    }
}
