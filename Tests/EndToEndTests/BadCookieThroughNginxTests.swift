import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Cookie headers as browsers, proxies and attackers send them, through nginx: every one gets
/// the same 200 with the cleared cookie, and the backend is called only for the first
/// `crocante_session` pair when it holds a usable session.
///
/// Each case is followed by one valid logout (one worker, one backend call at a time): the
/// backend count stopping at exactly the expected number proves that no extra call happened,
/// without sleeping.
@Suite(.serialized)
struct BadCookieThroughNginxTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        /// The `Cookie` header lines to send, and the token the backend must get (nil: no call).
        let build: @Sendable () throws -> (cookies: [String], bytes: [[UInt8]]?, revokes: String?)
        /// Further sessions in the header that open and are revoked too (issue 10: every one counts).
        var alsoRevoked = 0

        var testDescription: String { name }

        init(_ name: String, revokes: Bool = false, _ headers: @escaping @Sendable (String) throws -> [String]) {
            self.name = name
            build = {
                let token = Seal.tokens(1, "case")[0]
                return (try headers(try Seal.session(token)), nil, revokes ? token : nil)
            }
        }

        init(_ name: String, bytes: @escaping @Sendable (String) throws -> [[UInt8]], revokes: Bool = false) {
            self.name = name
            build = {
                let token = Seal.tokens(1, "case")[0]
                return ([], try bytes(try Seal.session(token)), revokes ? token : nil)
            }
        }

        init(_ name: String, revokesToken token: String? = nil, build: @escaping @Sendable () throws -> [String]) {
            self.name = name
            self.build = { (try build(), nil, token) }
        }

        /// The same case, with `count` more sessions in it that are revoked too.
        func revoking(_ count: Int) -> Case {
            var copy = self
            copy.alsoRevoked = count
            return copy
        }
    }

    static func session(_ value: String) -> [String] { ["crocante_session=\(value)"] }

    static let cases: [Case] = [
        Case("no Cookie header") { [] },
        Case("empty value") { session("") },
        Case("crocante_session without =") { ["crocante_session"] },
        Case("crocante_session without =, then a valid pair", revokes: true) { ["crocante_session; crocante_session=\($0)"] },
        Case("not base64url") { session("!!not*base64url~~") },
        Case("standard base64 alphabet") {
            // Node would decode it; the origin never issues it (it writes base64url), and this
            // responder does not open it. Sealed again until the standard encoding holds a `+` or
            // `/`: with a padding `=` alone it is base64url with padding, which both decoders read.
            let token = Seal.tokens(1, "case")[0]
            for _ in 0..<64 {
                let standard = Data(Seal.unbase64url(try Seal.session(token))).base64EncodedString()
                guard standard.contains("+") || standard.contains("/") else { continue }
                SecretLedger.record(standard)
                return session(standard)
            }
            throw HarnessError("64 seals in a row without a + or / in their standard base64")
        },
        Case("31 decoded bytes") { session(Seal.base64url(Seal.randomBytes(31))) },
        Case("32 random decoded bytes") { session(Seal.base64url(Seal.randomBytes(32))) },
        Case("32 bytes that seal an empty plaintext") { session(try Seal.bytes([])) },
        Case("tampered iv") { session(Seal.tampered($0, at: 3)) },
        Case("tampered tag") { session(Seal.tampered($0, at: 20)) },
        Case("tampered ciphertext") { session(Seal.tampered($0, at: 40)) },
        Case("truncated ciphertext") {
            let value = Seal.base64url(Array(Seal.unbase64url($0).dropLast()))
            SecretLedger.record(value)
            return session(value)
        },
        Case("sealed with another secret") { _ in session(try Seal.session("other-secret-token", secret: Seal.foreignSecret)) },
        Case("JSON whose token is a number") { session(try Seal.origin([#"{"token":12345,"issuedAt":1700000000000}"#])[0]) },
        Case("JSON whose token is null") { session(try Seal.origin([#"{"token":null,"issuedAt":1700000000000}"#])[0]) },
        Case("JSON whose token is an array") { session(try Seal.origin([#"{"token":["abc"],"issuedAt":1}"#])[0]) },
        Case("JSON without a token") { session(try Seal.origin([#"{"issuedAt":1700000000000}"#])[0]) },
        Case("JSON with an empty token") { session(try Seal.origin([Seal.originJSON(token: "")])[0]) },
        Case("JSON token with CR LF") { session(try Seal.origin([Seal.originJSON(token: "tok\r\nX-Injected: 1")])[0]) },
        Case("JSON token with a space") { session(try Seal.origin([Seal.originJSON(token: "tok en")])[0]) },
        Case("JSON token with non-ASCII") { session(try Seal.origin([Seal.originJSON(token: "tökén-ünicode")])[0]) },
        Case("JSON with invalid UTF-8 in the token") {
            session(try Seal.bytes(Array(#"{"token":"ab"#.utf8) + [0xFF] + Array(#"cd","issuedAt":1}"#.utf8)))
        },
        Case("legacy plaintext with CR LF") { session(try Seal.origin(["legacy-token\r\nX-Injected: yes"])[0]) },
        Case("legacy plaintext with LF only") { session(try Seal.origin(["legacy-token\nX-Injected: yes"])[0]) },
        Case("legacy plaintext with spaces") { session(try Seal.origin(["legacy token with spaces"])[0]) },
        Case("legacy plaintext with a tab") { session(try Seal.origin(["legacy\ttoken"])[0]) },
        Case("legacy plaintext of invalid UTF-8") { session(try Seal.bytes([0xFF, 0xFE, 0x41, 0x42, 0xC3, 0x28])) },
        // Not a JSON object, so a legacy cookie: the whole plaintext is the token, as at the origin.
        Case("malformed JSON is a legacy token", revokesToken: #"{"token":"half-json-token""#) {
            session(try Seal.origin([#"{"token":"half-json-token""#])[0])
        },
        Case("invalid UTF-8 bytes in the header", bytes: { _ in
            [[0xFF, 0xFE] + Array("; crocante_session=".utf8) + [0xC3, 0x28, 0x80]]
        }),
        Case("invalid UTF-8 bytes before a valid pair", bytes: { cookie in
            [Array("a=".utf8) + [0xC3, 0x28, 0xFF] + Array("; crocante_session=\(cookie)".utf8)]
        }, revokes: true),
        Case("a 4 KiB cookie that is no session") { session(Seal.base64url(Seal.randomBytes(3072))) },
        Case("a 7 KiB cookie that is no session") { session(Seal.base64url(Seal.randomBytes(5376))) },
        Case("many cookies, no session") { _ in [(0..<300).map { "c\($0)=v\($0)" }.joined(separator: "; ")] },
        Case("many cookies, the session among them", revokes: true) { cookie in
            [((0..<150).map { "c\($0)=v\($0)" } + ["crocante_session=\(cookie)"] + (150..<300).map { "c\($0)=v\($0)" })
                .joined(separator: "; ")]
        },
        // Every crocante_session value that opens is revoked, not only the first (a tossed cookie
        // placed first must not hide the victim's session).
        Case("twice in one header, the first not a session", revokes: true) { ["crocante_session=not-a-session; crocante_session=\($0)"] },
        Case("twice in one header, the first empty", revokes: true) { ["crocante_session=; crocante_session=\($0)"] },
        Case("twice in one header, the first valid", revokes: true) { cookie in
            ["crocante_session=\(cookie); crocante_session=\(try Seal.session("second-of-two-token"))"]
        }.revoking(1),
        Case("in two Cookie headers, the first not a session", revokes: true) { ["crocante_session=not-a-session", "crocante_session=\($0)"] },
        Case("in two Cookie headers, the first valid", revokes: true) { cookie in
            ["crocante_session=\(cookie)", "crocante_session=\(try Seal.session("second-header-token"))"]
        }.revoking(1),
        Case("only in the second Cookie header", revokes: true) { ["theme=dark; lang=en", "crocante_session=\($0)"] },
        // RFC 6265 §4.1.1 allows a quoted value; the responder unwraps it (the origin's pattern would not).
        Case("quoted valid value", revokes: true) { ["crocante_session=\"\($0)\""] },
        Case("quoted value that is no session") { _ in ["crocante_session=\"not-a-session\""] },
        Case("Crocante_Session is a different cookie") { ["Crocante_Session=\($0)"] },
        Case("CROCANTE_SESSION is a different cookie") { ["CROCANTE_SESSION=\($0)"] },
        Case("Crocante_Session first, then crocante_session", revokes: true) { cookie in
            ["Crocante_Session=\(try Seal.session("capitalised-token")); crocante_session=\(cookie)"]
        },
        Case("a longer or shorter name is a different cookie") { ["xcrocante_session=\($0); crocante_session2=\($0); crocante_sessio=\($0)"] },
        Case("spaces and tabs around the pair", revokes: true) { ["a=1;\t crocante_session = \($0) \t; b=2"] },
    ]

    @Test(arguments: cases)
    func everyCookieGetsTheSame200AndOnlyASessionIsRevoked(_ testCase: Case) throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let (cookies, bytes, revokes) = try testCase.build()
            let answer = try stack.send(cookies: bytes ?? cookies.map { Array($0.utf8) })
            #expect(answer.status == 200)
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(answer.body == #"{"success":true}"#)
            let previous = (revokes == nil ? 0 : 1) + testCase.alsoRevoked
            try stack.expectNoOtherCall(after: previous)
            if let revokes { #expect(stack.backendBearers.contains("Bearer \(revokes)")) }
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 2, queued: previous + 1, revoked: previous + 1))
        }
    }
}

extension BadCookieThroughNginxTests {
    /// What nginx does with big cookies (observed with nginx 1.22 and its default
    /// `large_client_header_buffers 4 8k`, which nginx.conf.example leaves alone):
    /// - a `Cookie` line of up to 8192 bytes, CRLF included, is passed on; one byte more and nginx
    ///   answers `400 Request Header Or Cookie Too Large` itself: the responder never sees the
    ///   request, and the answer carries no `Set-Cookie`, so the browser keeps its cookie;
    /// - several `Cookie` lines are fine while the request's header lines fit in the four 8 KiB
    ///   buffers: four lines of ~8 KiB reach the responder as one ~32 KiB `HTTP_COOKIE`
    ///   (`$http_cookie` joins them) and a session in the last one is found; a fifth 7 KiB line is
    ///   again a 400 from nginx.
    @Test func bigCookiesUpToWhatNginxPassesAndBeyond() throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let prefix = "crocante_session="
            let lineOverhead = "Cookie: ".utf8.count + prefix.utf8.count + 2
            func single(_ lineLength: Int) throws -> HTTPAnswer {
                try stack.send(cookies: [Array((prefix + String(repeating: "A", count: lineLength - lineOverhead)).utf8)])
            }
            // A session big enough to need a ~6 KiB cookie still opens and revokes.
            let bigToken = "big-" + String(repeating: "T", count: 4500)
            let bigCookie = try Seal.session(bigToken)
            #expect(bigCookie.utf8.count > 6000)
            #expect(try stack.logout(bigCookie).status == 200)
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(bigToken)"])

            let atTheLimit = try single(8192)
            #expect(atTheLimit.status == 200 && atTheLimit.header("Set-Cookie") == Contract.clearedSecureCookie)
            for length in [8193, 16 * 1024] {
                let refused = try single(length)
                #expect(refused.status == 400, "a \(length)-byte Cookie line")
                #expect(refused.header("Set-Cookie") == nil)
                #expect(refused.body.contains("400 Request Header Or Cookie Too Large"))
            }

            let lastToken = Seal.tokens(1, "fourth-line")[0]
            let filler = (0..<3).map { Array("c\($0)=\(String(repeating: "B", count: 8100))".utf8) }
            let four = try stack.send(cookies: filler + [Array("c3=\(String(repeating: "B", count: 7000)); \(prefix)\(try Seal.session(lastToken))".utf8)])
            #expect(four.status == 200 && four.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(stack.backendReaches(2))
            #expect(stack.backendBearers.last == "Bearer \(lastToken)")
            let five = try stack.send(cookies: (0..<5).map { Array("c\($0)=\(String(repeating: "B", count: 7000))".utf8) })
            #expect(five.status == 400 && five.header("Set-Cookie") == nil)

            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            // Only the three requests answered 200 reached the responder.
            #expect(stopped.totals == ResponderTotals(requests: 3, queued: 2, revoked: 2))
        }
    }
}
