import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Cookies the origin's login issues, minted by Node exactly as origin-bff.md describes, and
/// secret rotation.
@Suite(.serialized)
struct OriginCookieThroughNginxTests {
    /// A JWT-shaped token: three base64url parts, with `-` and `_`.
    static func jwt(payloadBytes: Int) -> String {
        let header = Seal.base64url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Seal.base64url(Array(#"{"sub":"user-\#(UUID().uuidString)","pad":"\#(String(repeating: "p", count: payloadBytes))"}"#.utf8))
        return header + "." + payload + "." + Seal.base64url(Seal.randomBytes(32))
    }

    /// Every visible ASCII byte but the space, the whole range a token may hold.
    static let allVisibleASCII = String(decoding: Array(0x21...0x7E), as: UTF8.self)

    /// Tokens of 1 byte to 3 KiB, JWT-shaped ones, and every visible ASCII byte, each sealed in
    /// both the JSON and the legacy plaintext: every one revokes with exactly its bearer.
    @Test func everyCookieTheOriginIssuesRevokesItsToken() throws {
        let run = UUID().uuidString.prefix(6)
        var tokens = ["Z", "q7", "tok-\(run)"]
        tokens += [16, 100, 1000, 2048, 3072].map { length in
            let prefix = "len\(length)-\(run)-"
            return prefix + String(repeating: "k", count: length - prefix.utf8.count)
        }
        tokens += [Self.jwt(payloadBytes: 20), Self.jwt(payloadBytes: 1500), Self.allVisibleASCII + "-\(run)"]
        #expect(tokens.map(\.utf8.count).min() == 1 && tokens.map(\.utf8.count).max() == 3072)
        SecretLedger.record(tokens)
        let json = try Seal.origin(tokens.map(Seal.originJSON(token:)))
        let legacy = try Seal.origin(tokens)
        try withTestStack { stack in
            for cookie in json + legacy {
                let answer = try stack.logout(cookie)
                #expect(answer.status == 200 && answer.body == #"{"success":true}"#)
            }
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            // Each token is in a JSON and a legacy cookie: the second is a duplicate, revoked once.
            #expect(stopped.totals == ResponderTotals(requests: 2 * tokens.count, queued: tokens.count, revoked: tokens.count))
            #expect(stack.responder.finalStatus?["revocations_duplicate"] == tokens.count)
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
        }
    }

    /// With SESSION_SECRET_PREVIOUS set, cookies sealed with either secret open; one sealed with
    /// neither does not.
    @Test func rotationOpensTheCurrentAndThePreviousSecretOnly() throws {
        var environment = TestStack.oneAtATime
        environment["SESSION_SECRET_PREVIOUS"] = Harness.previousSecret
        try withTestStack(.init(environment: environment)) { stack in
            let tokens = Seal.tokens(3, "rotation")
            let current = try Seal.session(tokens[0])
            let previous = try Seal.session(tokens[1], secret: Harness.previousSecret)
            let neither = try Seal.session(tokens[2], secret: Seal.foreignSecret)
            for cookie in [current, previous, neither] { #expect(try stack.logout(cookie).status == 200) }
            try stack.expectNoOtherCall(after: 2)
            #expect(Array(stack.backendBearers.prefix(2)) == ["Bearer \(tokens[0])", "Bearer \(tokens[1])"])
            let stopped = stack.stopResponder()
            #expect(stopped.totals == ResponderTotals(requests: 4, queued: 3, revoked: 3))
        }
    }

    /// The control: without SESSION_SECRET_PREVIOUS a cookie sealed with the old secret is no session.
    @Test func withoutThePreviousSecretItsCookiesDoNotOpen() throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let previous = try Seal.session(Seal.tokens(1, "unrotated")[0], secret: Harness.previousSecret)
            #expect(try stack.logout(previous).status == 200)
            try stack.expectNoOtherCall(after: 0)
        }
    }
}
