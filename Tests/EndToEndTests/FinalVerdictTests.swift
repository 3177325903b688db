import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Not everything is retried: a final 4xx ends a revocation after one call, and a JWT past its
/// `exp` is never sent at all.
@Suite(.serialized)
struct FinalVerdictTests {
    /// 401 is final: each token is called exactly once, though retries are 50 ms apart.
    @Test func aFinal4xxIsOneCall() throws {
        let options = TestStack.Options(backend: ["--status", "401"], environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(5, "rejected")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.waitForDelivery(of: tokens).isEmpty)
            // Twenty retry periods: a retry would have come.
            usleep(1_000_000)
            let calls = tokens.map { token in stack.backendRequests().filter { $0.bearerToken == token }.count }
            #expect(stack.stopResponder().status == 0)
            let totals = try #require(stack.responder.finalStatus)
            print("verdict/401: calls per token \(calls); rejected \(totals["revocations_rejected"] ?? -1), retried \(totals["revocations_retried"] ?? -1)")
            #expect(calls == Array(repeating: 1, count: tokens.count))
            #expect(totals["revocations_rejected"] == tokens.count)
            #expect(totals["revocations_retried"] == 0)
        }
    }

    /// An unsigned-looking JWT whose payload says `exp` a minute ago is never sent and counted
    /// expired; the same with `exp` an hour ahead is sent.
    @Test func aJWTPastItsExpIsNeverSent() throws {
        let options = TestStack.Options(environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let now = Int(Date().timeIntervalSince1970)
            let run = Seal.tokens(1, "jwt")[0]
            func jwt(exp: Int) -> String {
                let header = Seal.base64url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
                let payload = Seal.base64url(Array(#"{"sub":"\#(run)","exp":\#(exp)}"#.utf8))
                return "\(header).\(payload).\(Seal.base64url(Array("signature-\(run)".utf8)))"
            }
            let expired = jwt(exp: now - 60)
            let alive = jwt(exp: now + 3600)
            #expect(try stack.logout(Seal.session(expired)).status == 200)
            #expect(try stack.logout(Seal.session(alive)).status == 200)
            #expect(stack.waitForDelivery(of: [alive]).isEmpty)
            usleep(500_000)
            #expect(stack.stopResponder().status == 0)
            let totals = try #require(stack.responder.finalStatus)
            let sent = stack.deliveredTokens()
            print("verdict/expired JWT: expired sent \(sent.contains(expired) ? 1 : 0) time(s), alive delivered \(sent.contains(alive) ? 1 : 0)/1; expired \(totals["revocations_expired"] ?? -1)")
            #expect(!sent.contains(expired))
            #expect(totals["revocations_expired"] == 1)
            #expect(totals["revocations_revoked"] == 1)
        }
    }
}
