import Foundation
import LogoutCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The responder's log never holds a token, a cookie value or a secret. Every end-to-end test
/// checks its responders against everything any test has used (``SecretLedger``); this suite
/// checks the check, and runs every path at the most verbose log level.
@Suite(.serialized)
struct SecretsInLogsTests {
    @Test func theLeakCheckFindsWhatItLooksFor() {
        let token = "ledger-self-test-\(UUID().uuidString)"
        SecretLedger.record([token, "Q9"])
        #expect(SecretLedger.leaks(in: "2026 info crocante-logout: token=\(token) [Revocation] revoked") == [token])
        #expect(SecretLedger.leaks(in: "header Bearer \(token.dropLast())…").isEmpty)
        // A short token counts as a whole word or a whole value only.
        #expect(SecretLedger.leaks(in: "notice crocante-logout: reason=Q9 [X] failed") == ["Q9"])
        #expect(SecretLedger.leaks(in: "notice crocante-logout: reason=Q99 [X] Q9x failed").isEmpty)
        #expect(SecretLedger.leaks(in: "secret \(Harness.secret)") == [Harness.secret])
        // A value that is the whole log, and two side by side (the check scans byte offsets).
        #expect(SecretLedger.leaks(in: token) == [token])
        #expect(SecretLedger.leaks(in: "x\(token)\(Harness.secret)") == [Harness.secret, token].sorted())
    }

    /// The TLS client key (issue 11): once the test PKI exists, every line of its keys is in the
    /// ledger, so every responder's output and every refusal is checked for them.
    @Test func theLedgerHoldsTheClientKey() throws {
        let pki = try TestCertificates.make()
        let key = try String(contentsOfFile: pki.client.key, encoding: .utf8)
        let body = key.split(separator: "\n").filter { !$0.hasPrefix("-----") }.map(String.init)
        #expect(!body.isEmpty && body.allSatisfy { SecretLedger.all.contains($0) })
        #expect(SecretLedger.leaks(in: "error crocante-logout: reason=\(body[0]) [Revocation] failed") == [body[0]])
    }

    /// At `trace`, with a previous secret set and a failing backend: valid, rotated, forged,
    /// malformed and injection-shaped cookies, other methods and paths. Nothing of them is logged
    /// but each revoked token's fingerprint, which is what lets a line be matched to the backend.
    @Test(arguments: [["--status", "500"], ["--behavior", "reset"], ["--status", "200"]])
    func atTraceLevelNothingSecretIsLogged(backend: [String]) throws {
        let options = TestStack.Options(
            backend: backend,
            environment: ["CROCANTE_LOG_LEVEL": "trace", "SESSION_SECRET_PREVIOUS": Harness.previousSecret])
        try withTestStack(options) { stack in
            let tokens = Seal.tokens(2, "trace")
            let cookies = [
                try Seal.session(tokens[0]), try Seal.session(tokens[1], secret: Harness.previousSecret),
                try Seal.session("trace-foreign-token", secret: Seal.foreignSecret),
                try Seal.origin([Seal.originJSON(token: "trace-crlf\r\nX-Injected: 1")])[0],
                try Seal.origin(["trace legacy with spaces"])[0],
            ]
            let tampered = Seal.tampered(cookies[0], at: 20)
            for cookie in cookies + [tampered] { #expect(try stack.logout(cookie).status == 200) }
            #expect(try stack.send("GET", cookies: [Array("crocante_session=\(cookies[0])".utf8)]).status == 405)
            #expect(try stack.send(path: "/crocante-logout/ping", cookies: [Array("crocante_session=\(cookies[1])".utf8)]).status == 200)
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals?.queued == 2)
            let log = stack.responder.stderr
            for token in tokens {
                let fingerprint = try #require(AccessToken(validating: Array(token.utf8))).fingerprint
                #expect(log.contains("token=\(fingerprint)"), "no line names \(fingerprint)")
            }
            #expect(SecretLedger.leaks(in: log).isEmpty)
        }
    }
}
