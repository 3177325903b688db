import FastCGI
import LogoutCore
import Testing

@testable import LogoutService

@Suite struct RouterTests {
    static let secret = try! SessionSecret("router-secret-0123456789-abcdefghijklm", setting: "SESSION_SECRET")
    static let router = Router(
        logoutPath: "/api/auth/logout", statusPath: "/crocante-logout/status", pingPath: "/crocante-logout/ping",
        endpoint: LogoutEndpoint(opener: SealedSession.Opener(secrets: [secret]), secureCookie: true))

    static func cookieHeader(token: String = "access-token-1") throws -> [UInt8] {
        let plaintext = try SealedSession.plaintext(token: token, issuedAtMilliseconds: 1_732_400_000_000)
        return Array("theme=dark; crocante_session=\(try SealedSession.seal(plaintext: plaintext, with: secret))".utf8)
    }

    @Test func postOnTheLogoutPathLogsOutAndRevokes() throws {
        let route = Self.router.route(FastCGIRequest(method: "POST", path: "/api/auth/logout", cookieHeader: try Self.cookieHeader()))
        guard case .logout(let decision) = route else { Issue.record("routed to \(route)"); return }
        #expect(decision.response == .loggedOut(secure: true))
        #expect(decision.tokenToRevoke?.value == "access-token-1")
        #expect(decision.isLogout)
    }

    @Test(arguments: ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "post", ""])
    func otherMethodsOnTheLogoutPathAreNotAllowed(method: String) throws {
        let route = Self.router.route(FastCGIRequest(method: method, path: "/api/auth/logout", cookieHeader: try Self.cookieHeader()))
        guard case .logout(let decision) = route else { Issue.record("routed to \(route)"); return }
        #expect(decision.response == .methodNotAllowed)
        #expect(decision.tokenToRevoke == nil)
        #expect(!decision.isLogout)
    }

    @Test(arguments: [
        ("POST", "/"),
        ("POST", "/api/auth/logout/"),
        ("POST", "/api/auth/logout2"),
        ("POST", "/API/AUTH/LOGOUT"),
        ("POST", "/api/auth"),
        ("POST", ""),
        ("GET", "/api/auth/session"),
        ("GET", "/crocante-logout/status/"),
        ("GET", "/crocante-logout/ping?x"),
    ])
    func otherPathsAreNotFound(method: String, path: String) throws {
        #expect(Self.router.route(FastCGIRequest(method: method, path: path, cookieHeader: try Self.cookieHeader())) == .notFound)
    }

    @Test(arguments: [
        ("GET", "", StatusReport.Format.json),
        ("GET", "format=prometheus", .prometheus),
        ("POST", "a=1&format=prometheus", .prometheus),
        ("GET", "format=prometheusx", .json),
        ("GET", "format=PROMETHEUS", .json),
        ("HEAD", "format=json", .json),
    ])
    func statusPathAnswersInTheAskedFormat(method: String, query: String, format: StatusReport.Format) {
        #expect(Self.router.route(FastCGIRequest(method: method, path: "/crocante-logout/status", query: query)) == .status(format))
    }

    @Test(arguments: ["GET", "POST", "HEAD"])
    func pingPathAnswersAnyMethod(method: String) {
        #expect(Self.router.route(FastCGIRequest(method: method, path: "/crocante-logout/ping")) == .ping)
    }

    @Test func notFoundBytesKeepTheCookie() {
        let expected =
            "Status: 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 37\r\nCache-Control: no-store\r\n\r\n"
            + #"{"success":false,"error":"not found"}"#
        #expect(String(decoding: LogoutResponse.notFound.bytes, as: UTF8.self) == expected)
    }

    @Test func pongBytes() {
        let expected = "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nCache-Control: no-store\r\n\r\npong"
        #expect(String(decoding: LogoutResponse.pong.bytes, as: UTF8.self) == expected)
    }
}
