import LogoutCore
import Testing

@Suite struct LogoutResponseTests {
    // MARK: Exact bytes

    @Test func loggedOutSecureBytes() {
        let expected =
            "Status: 200 OK\r\n"
            + "Content-Type: application/json\r\n"
            + "Content-Length: 16\r\n"
            + "Cache-Control: no-store\r\n"
            + "Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict; Secure\r\n"
            + "\r\n"
            + #"{"success":true}"#
        #expect(String(decoding: LogoutResponse.loggedOut(secure: true).bytes, as: UTF8.self) == expected)
        #expect(LogoutResponse.loggedOut(secure: true).bytes == Array(expected.utf8))
    }

    @Test func loggedOutInsecureBytes() {
        let expected =
            "Status: 200 OK\r\n"
            + "Content-Type: application/json\r\n"
            + "Content-Length: 16\r\n"
            + "Cache-Control: no-store\r\n"
            + "Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict\r\n"
            + "\r\n"
            + #"{"success":true}"#
        #expect(String(decoding: LogoutResponse.loggedOut(secure: false).bytes, as: UTF8.self) == expected)
        #expect(LogoutResponse.loggedOut(secure: false).bytes == Array(expected.utf8))
    }

    /// Splits a CGI response into its header lines and body.
    static func parse(_ response: LogoutResponse) throws -> (headers: [String], body: [UInt8]) {
        let bytes = response.bytes
        let separator = Array("\r\n\r\n".utf8)
        let end = try #require(
            bytes.indices.first { bytes[$0...].starts(with: separator) }, "no blank line after the headers")
        var headers: [String] = []
        var lineStart = 0
        for index in 0...end where index == end || (bytes[index] == 0x0D && bytes[index + 1] == 0x0A) {
            headers.append(String(decoding: bytes[lineStart..<index], as: UTF8.self))
            lineStart = index + 2
        }
        return (headers, Array(bytes[(end + separator.count)...]))
    }

    static func header(_ name: String, in headers: [String]) -> [String] {
        headers.compactMap { line in
            line.hasPrefix(name + ": ") ? String(line.dropFirst(name.count + 2)) : nil
        }
    }

    @Test func methodNotAllowedAllowsPostAndKeepsTheCookie() throws {
        let (headers, body) = try Self.parse(.methodNotAllowed)
        #expect(headers.first == "Status: 405 Method Not Allowed")
        #expect(Self.header("Allow", in: headers) == ["POST"])
        #expect(Self.header("Set-Cookie", in: headers).isEmpty)
        #expect(Self.header("Content-Type", in: headers) == ["application/json"])
        #expect(Self.header("Cache-Control", in: headers) == ["no-store"])
        #expect(String(decoding: body, as: UTF8.self) == #"{"success":false,"error":"method not allowed"}"#)
    }

    @Test(arguments: [
        LogoutResponse.loggedOut(secure: true), .loggedOut(secure: false), .methodNotAllowed,
    ])
    func contentLengthMatchesTheBody(response: LogoutResponse) throws {
        let (headers, body) = try Self.parse(response)
        #expect(Self.header("Content-Length", in: headers) == ["\(body.count)"])
        #expect(!body.isEmpty)
        #expect(headers.allSatisfy { !$0.isEmpty && !$0.utf8.contains(0x0A) && !$0.utf8.contains(0x0D) })
    }

    // MARK: LogoutEndpoint.decide

    let secret = try! SessionSecret("endpoint-secret-0123456789-abcdefghijk", setting: "SESSION_SECRET")

    func endpoint(secure: Bool = true) -> LogoutEndpoint {
        LogoutEndpoint(opener: SealedSession.Opener(secrets: [secret]), secureCookie: secure)
    }

    func validCookieHeader(token: String = "access-token-1") throws -> String {
        let plaintext = try SealedSession.plaintext(token: token, issuedAtMilliseconds: 1_732_400_000_000)
        return "theme=dark; crocante_session=\(try SealedSession.seal(plaintext: plaintext, with: secret)); lang=es"
    }

    @Test func postWithAValidCookieLogsOutAndRevokes() throws {
        let decision = endpoint().decide(method: "POST", cookieHeader: Array(try validCookieHeader().utf8))
        #expect(decision.response == .loggedOut(secure: true))
        #expect(decision.tokenToRevoke?.value == "access-token-1")
    }

    @Test func secureCookieFlagReachesTheResponse() throws {
        let decision = endpoint(secure: false).decide(method: "POST", cookieHeader: Array(try validCookieHeader().utf8))
        #expect(decision.response == .loggedOut(secure: false))
        #expect(decision.tokenToRevoke?.value == "access-token-1")
    }

    @Test(arguments: [
        "",
        "theme=dark",
        "crocante_session=",
        "crocante_session=not-a-sealed-cookie",
        "Crocante_Session=whatever",
    ])
    func postWithoutAUsableCookieStillLogsOut(cookieHeader: String) {
        let decision = endpoint().decide(method: "POST", cookieHeader: Array(cookieHeader.utf8))
        #expect(decision.response == .loggedOut(secure: true))
        #expect(decision.tokenToRevoke == nil)
    }

    @Test func postWithACookieSealedWithAnotherSecretRevokesNothing() throws {
        let other = try SessionSecret("another-secret-0123456789-abcdefghijk", setting: "SESSION_SECRET")
        let cookie = try SealedSession.seal(plaintext: Array("access-token-1".utf8), with: other)
        let decision = endpoint().decide(method: "POST", cookieHeader: Array("crocante_session=\(cookie)".utf8))
        #expect(decision.response == .loggedOut(secure: true))
        #expect(decision.tokenToRevoke == nil)
    }

    @Test(arguments: ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "post", ""])
    func otherMethodsOnThePathAreNotAllowed(method: String) throws {
        let decision = endpoint().decide(method: method, cookieHeader: Array(try validCookieHeader().utf8))
        #expect(decision.response == .methodNotAllowed)
        #expect(decision.tokenToRevoke == nil)
    }
}
