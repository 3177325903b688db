import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the backend receives: one call per logout with a session, to the right URL, with the
/// right method and headers, and nothing else; and the responder's totals agree with it.
@Suite(.serialized)
struct RevocationThroughNginxTests {
    /// The gateway with and without its trailing `/`, the path with and without its leading
    /// `/`, a gateway with a base path, and the origin's `NEXT_PUBLIC_` spellings: always one `/`.
    @Test(arguments: [
        (["API_GATEWAY": "http://{backend}/", "EP_AUTH_LOGOUT": "/auth/logout"], "/auth/logout"),
        (["API_GATEWAY": "http://{backend}", "EP_AUTH_LOGOUT": "/auth/logout"], "/auth/logout"),
        (["API_GATEWAY": "http://{backend}/", "EP_AUTH_LOGOUT": "auth/logout"], "/auth/logout"),
        (["API_GATEWAY": "http://{backend}", "EP_AUTH_LOGOUT": "auth/logout"], "/auth/logout"),
        (["API_GATEWAY": "http://{backend}/api/v1/", "EP_AUTH_LOGOUT": "/auth/logout"], "/api/v1/auth/logout"),
        (["API_GATEWAY": "http://{backend}/api/v1", "EP_AUTH_LOGOUT": "auth/logout"], "/api/v1/auth/logout"),
        (
            ["API_GATEWAY": "", "EP_AUTH_LOGOUT": "", "NEXT_PUBLIC_API_GATEWAY": "http://{backend}",
             "NEXT_PUBLIC_EP_AUTH_LOGOUT": "v2/logout"], "/v2/logout"
        ),
    ])
    func theBackendGetsOnePostWithTheBearerAndNothingElse(settings: [String: String], uri: String) throws {
        try withTestStack(.init(environment: settings)) { stack in
            let token = Seal.tokens(1, "url")[0]
            let cookie = try Seal.session(token)
            let answer = try stack.send(cookies: [Array("theme=dark; crocante_session=\(cookie); lang=en".utf8)])
            #expect(answer.status == 200)
            let stopped = stack.stopResponder()
            #expect(stopped.totals == ResponderTotals(requests: 1, queued: 1, revoked: 1))
            let received = stack.backendRequests()
            try #require(received.count == 1)
            let request = received[0]
            #expect(request.method == "POST")
            #expect(request.uri == uri)
            #expect(request.values("Authorization") == ["Bearer \(token)"])
            #expect(request.values("Content-Type") == ["application/json"])
            #expect(request.values("Accept") == ["application/json"])
            #expect(request.values("Content-Length") == ["0"])
            #expect(request.values("Host") == ["127.0.0.1:\(stack.backendPort)"])
            #expect(request.body.isEmpty)
            // Nothing of the browser's request travels on: no cookie, no other header.
            #expect(Set(request.headerNames).isSubset(of: ["authorization", "content-type", "accept", "content-length", "host", "user-agent", "connection"]),
                    "\(request.headerNames)")
            #expect(!request.headers.flatMap { $0 }.contains { $0.contains(cookie) || $0.contains("theme") })
        }
    }

    /// Logouts with a session, without one and with a bad one, interleaved: the backend gets
    /// exactly one call per session (the same session again is a duplicate, not a second call),
    /// and the final totals match what it saw and how it answered. A 500 is no verdict: retried
    /// until the stop, then (no spool) counted lost.
    @Test(arguments: [200, 401, 500])
    func oneCallPerSessionAndTheTotalsMatchTheBackend(status: Int) throws {
        try withTestStack(.init(backend: ["--status", "\(status)"])) { stack in
            let tokens = Seal.tokens(8, "count")
            let cookies = try Seal.sessions(tokens)
            let bad = [nil, "", "garbage", Seal.tampered(cookies[0], at: 20), try Seal.session("x-foreign", secret: Seal.foreignSecret)]
            var sent = 0
            for (index, cookie) in cookies.enumerated() {
                #expect(try stack.logout(cookie).status == 200)
                #expect(try stack.logout(bad[index % bad.count]).status == 200)
                sent += 2
            }
            if status != 500 { #expect(Harness.waitUntil { stack.backendRequests().count == tokens.count }) }
            #expect(try stack.logout(cookies[0]).status == 200)  // the same session again
            sent += 1
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            let final = try #require(stack.responder.finalStatus)
            #expect(final["accepted_requests"] == sent)
            #expect(final["revocations_queued"] == tokens.count && final["revocations_duplicate"] == 1, "\(final)")
            #expect(final["revocations_dropped"] == 0)
            let lines = stack.responder.stderr.split(separator: "\n").filter { $0.contains("[Revocation] revocation") }
            switch status {
            case 500:
                #expect(final["revocations_lost"] == tokens.count && final["revocations_revoked"] == 0, "\(final)")
                #expect((final["revocations_failed"] ?? 0) >= tokens.count)
                #expect(Set(stack.backendBearers) == Set(tokens.map { "Bearer \($0)" }))
                #expect(lines.contains { $0.contains("revocations failing") })
            default:
                let outcome = status == 200 ? "revocations_revoked" : "revocations_rejected"
                #expect(final[outcome] == tokens.count && final["revocations_lost"] == 0, "\(final)")
                #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
                // One log line per outcome, each with the token's fingerprint and never the token.
                #expect(lines.count == tokens.count)
            }
        }
    }
}
