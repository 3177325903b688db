import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// No token, cookie or secret lies in clear in a spool file: the records are sealed.
@Suite(.serialized)
struct SpoolSecretsTests {
    /// The scan finds a value planted in clear, so a clean result means something.
    @Test func theScanFindsATokenInClear() throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = Seal.tokens(1, "planted")[0]
        SecretLedger.record(token)
        try Data(([0, 1, 2] + Array(token.utf8) + [3, 4]) as [UInt8]).write(to: directory.appendingPathComponent("segment-1.crsp"))
        #expect(TestStack.secretsInClear(inSpool: directory.path).count == 1)
    }

    /// Fifty revocations left on disk (backend down, SIGTERM): the segments hold at least as many
    /// bytes as the tokens, and none of the tokens, cookies or secrets in clear.
    @Test func pendingRecordsHoldNoSecretInClear() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(50, "clear")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.stopResponder().status == 0)
            let files = TestStack.segmentFiles(in: spool)
            let bytes = files.compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }.reduce(0, +)
            let leaks = TestStack.secretsInClear(inSpool: spool)
            print("spool/secrets: \(files.count) segment(s), \(bytes) bytes for \(tokens.count) tokens; values in clear: \(leaks.count)")
            #expect(stack.responder.finalStatus?["revocations_handed_over"] == tokens.count)
            #expect(bytes >= tokens.map(\.utf8.count).reduce(0, +))
            #expect(leaks.isEmpty, "\(leaks)")
        }
    }
}
