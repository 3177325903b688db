import Foundation
import LogoutCore
import Testing

/// Cookie tossing (issue 10): every `crocante_session` value is tried, and `Domain=` variants
/// clear a parent-domain cookie too; with no variants the answer is the origin's, byte for byte.
@Suite struct EverySessionCookieTests {
    static let secret = try! SessionSecret("tossing-secret-0123456789-abcdefghijkl", setting: "SESSION_SECRET")
    static let endpoint = LogoutEndpoint(opener: SealedSession.Opener(secrets: [secret]), secureCookie: true)

    static func sealed(_ token: String) throws -> String {
        try SealedSession.seal(plaintext: SealedSession.plaintext(token: token, issuedAtMilliseconds: 1), with: secret)
    }

    @Test(arguments: [
        ("", [String]()),
        ("a=1", []),
        ("crocante_session=x", ["x"]),
        ("crocante_session=x; crocante_session=y", ["x", "y"]),
        (" crocante_session = x ;a=b;crocante_session=\"y\"", ["x", "y"]),
        ("crocante_session=; crocante_session=y", ["", "y"]),
        ("crocante_session=1; crocante_session=2; crocante_session=3; crocante_session=4; crocante_session=5", ["1", "2", "3", "4"]),
        ("Crocante_session=x; crocante_session", []),
    ])
    func valuesInHeaderOrderUpToTheLimit(header: String, expected: [String]) {
        #expect(SessionCookie.values(in: Array(header.utf8)).map { String(decoding: $0, as: UTF8.self) } == expected)
        #expect(SessionCookie.value(in: Array(header.utf8)).map { String(decoding: $0, as: UTF8.self) } == expected.first)
    }

    @Test func theVictimsSessionBehindATossedOneIsRevokedToo() throws {
        let attacker = try Self.sealed("attacker-token")
        let victim = try Self.sealed("victim-token")
        for header in ["crocante_session=\(attacker); crocante_session=\(victim)",
                       "crocante_session=\(attacker); other=1; crocante_session=\(victim); crocante_session=\(attacker)"] {
            let decision = Self.endpoint.decide(method: "POST", cookieHeader: Array(header.utf8))
            #expect(decision.tokensToRevoke.map(\.value) == ["attacker-token", "victim-token"])
            #expect(decision.tokenToRevoke?.value == "attacker-token")
            #expect(decision.response == .loggedOut(secure: true))
        }
    }

    @Test func failuresAreCountedByReason() throws {
        let other = try SessionSecret("another-secret-0123456789-abcdefghijk", setting: "SESSION_SECRET")
        let foreign = try SealedSession.seal(plaintext: SealedSession.plaintext(token: "t", issuedAtMilliseconds: 1), with: other)
        let badPlaintext = try SealedSession.seal(plaintext: Array(" ".utf8), with: Self.secret)
        let header = "crocante_session=%%%; crocante_session=AAAA; crocante_session=\(foreign); crocante_session=\(badPlaintext)"
        let decision = Self.endpoint.decide(method: "POST", cookieHeader: Array(header.utf8))
        #expect(decision.tokensToRevoke.isEmpty)
        #expect(decision.failures == [.notBase64url, .tooShort, .tagMismatch, .badPlaintext])
        #expect(Self.endpoint.decide(method: "GET", cookieHeader: Array(header.utf8)).failures.isEmpty)
    }

    @Test func variantsAddOneClearedCookieEachAndNoneChangesNothing() throws {
        for secure in [false, true] {
            #expect(LogoutResponse.loggedOut(secure: secure, variants: []) == .loggedOut(secure: secure))
        }
        let variants = try #require(LogoutResponse.cookieVariants(parsing: "Domain=.example.com, domain=example.com"))
        #expect(variants == ["Domain=.example.com", "Domain=example.com"])
        let text = String(decoding: LogoutResponse.loggedOut(secure: true, variants: variants).bytes, as: UTF8.self)
        let base = "Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict; Secure"
        #expect(text.contains(base + "\r\n" + base + "; Domain=.example.com\r\n" + base + "; Domain=example.com\r\n"))
        for bad in ["Path=/", "Domain=", "Domain=a..b", "Domain=ex ample.com", "Domain=x; HttpOnly", ""] {
            #expect(LogoutResponse.cookieVariants(parsing: bad) == nil, "\(bad)")
        }
    }
}
