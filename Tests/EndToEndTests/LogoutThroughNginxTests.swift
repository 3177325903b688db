import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built responder behind a real nginx, with a recording stand-in backend.
@Suite(.serialized)
struct LogoutThroughNginxTests {
    static let clearedCookie =
        "crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict"

    @Test func logoutAnswersExactlyAndRevokesWithTheBearerToken() throws {
        let stack = try Stack()
        let tokens = ["first.jwt-shaped_token", "second-token"]
        let cookies = try Harness.originCookies(plaintexts: tokens.map(Harness.originJSON(token:)))

        let answer = try stack.logout(cookie: cookies[0])
        #expect(answer.status == 200)
        #expect(answer.body == #"{"success":true}"#)
        #expect(answer.header("Content-Type") == "application/json")
        #expect(answer.header("Content-Length") == "16")
        #expect(answer.header("Cache-Control") == "no-store")
        #expect(answer.header("Set-Cookie") == Self.clearedCookie + "; Secure")

        // No cookie: same answer, no backend call. The next valid logout proves the ordering.
        let anonymous = try stack.logout(cookie: nil)
        #expect(anonymous.status == 200 && anonymous.header("Set-Cookie") == Self.clearedCookie + "; Secure")
        _ = try stack.logout(cookie: cookies[1])

        #expect(Harness.waitUntil { stack.backendRequests().count >= 2 })
        let received = stack.backendRequests()
        #expect(received.count == 2)
        #expect(received.map { $0.header("Authorization") } == tokens.map { "Bearer \($0)" })
        for request in received {
            #expect(request.method == "POST")
            #expect(request.uri == "/auth/logout")
            #expect(request.header("Content-Type") == "application/json")
            #expect(request.header("Accept") == "application/json")
        }

        stack.responder.send(SIGTERM)
        #expect(stack.responder.waitForExit() == 0)
        let log = stack.responder.stderr
        #expect(log.contains("revoked=2"))
        for secret in tokens + cookies + [Harness.secret] {
            #expect(!log.contains(secret), "the responder's log holds a token, cookie or secret")
        }
    }

    @Test func developmentClearsTheCookieWithoutSecure() throws {
        let stack = try Stack(environment: ["APP_ENV": "development"])
        let answer = try stack.logout(cookie: nil)
        #expect(answer.status == 200)
        #expect(answer.header("Set-Cookie") == Self.clearedCookie)
    }

    @Test(arguments: ["GET", "PUT", "DELETE", "OPTIONS"])
    func otherMethodsAreRefusedWithoutTouchingTheCookie(method: String) throws {
        let stack = try Stack()
        let cookie = try Harness.originCookies(plaintexts: [Harness.originJSON(token: "not-to-be-revoked")])[0]
        let answer = try stack.request(method, headers: ["Cookie: crocante_session=\(cookie)"])
        #expect(answer.status == 405)
        #expect(answer.header("Allow") == "POST")
        #expect(answer.header("Set-Cookie") == nil)
        #expect(answer.body.contains(#""success":false"#))
        stack.responder.send(SIGTERM)
        #expect(stack.responder.waitForExit() == 0)
        #expect(stack.backendRequests().isEmpty)
    }

    @Test func aBackendThatNeverAnswersDoesNotDelayTheLogout() throws {
        let stack = try Stack(backendArguments: ["--behavior", "blackhole"])
        let cookie = try Harness.originCookies(plaintexts: [Harness.originJSON(token: "held-by-a-blackhole")])[0]
        let answer = try stack.logout(cookie: cookie)
        // The answer is complete; the backend has the request and has not answered, nor ever will.
        #expect(answer.status == 200 && answer.body == #"{"success":true}"#)
        #expect(Harness.waitUntil { stack.backendRequests().count == 1 })
        #expect(try stack.logout(cookie: nil).status == 200)
    }

    @Test(arguments: [["--status", "500"], ["--status", "401"], ["--behavior", "reset"], nil] as [[String]?])
    func aFailingBackendStillLogsOut(backend: [String]?) throws {
        let stack = try Stack(backendArguments: backend)
        let cookie = try Harness.originCookies(plaintexts: [Harness.originJSON(token: "backend-trouble")])[0]
        let answer = try stack.logout(cookie: cookie)
        #expect(answer.status == 200)
        #expect(answer.header("Set-Cookie") == Self.clearedCookie + "; Secure")
        stack.responder.send(SIGTERM)
        #expect(stack.responder.waitForExit() == 0)
        let expected = backend == ["--status", "401"] ? "rejected=1" : "failed=1"
        #expect(stack.responder.stderr.contains(expected), "\(stack.responder.stderr)")
    }
}

/// Start-up refusals: one stderr line, a documented exit status, nothing left running.
@Suite struct StartupRefusalTests {
    static func start(_ environment: [String: String], arguments: [String] = []) throws -> (status: Int32, stderr: String) {
        let result = try Harness.run(Harness.product("crocante-logout").path, arguments, environment: environment)
        return (result.status, result.stderr)
    }

    static let valid = [
        "SESSION_SECRET": Harness.secret, "API_GATEWAY": "http://127.0.0.1:9/", "EP_AUTH_LOGOUT": "auth/logout",
    ]

    @Test(arguments: [
        ("SESSION_SECRET", nil, "SESSION_SECRET is not set"),
        ("SESSION_SECRET", "too-short", "SESSION_SECRET is invalid"),
        ("SESSION_SECRET", "default-secret", "SESSION_SECRET is invalid"),
        ("API_GATEWAY", "ftp://example", "API_GATEWAY is invalid"),
        ("EP_AUTH_LOGOUT", nil, "EP_AUTH_LOGOUT is not set"),
        ("CROCANTE_WORKERS", "0", "CROCANTE_WORKERS is invalid"),
        ("CROCANTE_LISTEN", "0.0.0.0", "CROCANTE_LISTEN is invalid"),
    ] as [(String, String?, String)])
    func badSettingsExit78(name: String, value: String?, message: String) throws {
        var environment = Self.valid
        environment[name] = value
        let (status, stderr) = try Self.start(environment)
        #expect(status == 78)
        #expect(stderr == "crocante-logout: \(message)" + stderr.dropFirst("crocante-logout: \(message)".count))
        #expect(stderr.split(separator: "\n").count == 1)
        #expect(!stderr.contains(Harness.secret))
    }

    @Test func aMissingSocketDirectoryExits71() throws {
        var environment = Self.valid
        environment["CROCANTE_LISTEN"] = "unix:/nonexistent-dir-for-crocante/fcgi.sock"
        let (status, stderr) = try Self.start(environment)
        #expect(status == 71)
        #expect(stderr.hasPrefix("crocante-logout: cannot listen on unix:/nonexistent-dir-for-crocante/fcgi.sock"))
    }

    @Test func anAddressInUseExits71() throws {
        let port = try Harness.freePort()
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        let bound = Socket.withSockaddr(Socket.inet(port: port)) { bind(holder, $0, $1) }
        try #require(bound == 0 && listen(holder, 1) == 0)
        var environment = Self.valid
        environment["CROCANTE_LISTEN"] = "127.0.0.1:\(port)"
        let (status, stderr) = try Self.start(environment)
        #expect(status == 71)
        #expect(stderr.contains("Address already in use"))
    }

    @Test func sealThenCheckConfig() throws {
        let sealed = try Harness.run(Harness.product("crocante-logout").path, ["seal", "--token", "abc"], environment: Self.valid)
        #expect(sealed.status == 0)
        #expect(sealed.stdout.trimmingCharacters(in: .newlines).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let checked = try Harness.run(Harness.product("crocante-logout").path, ["check-config"], environment: Self.valid)
        #expect(checked.status == 0)
        #expect(checked.stdout.contains("backend URL=http://127.0.0.1:9/auth/logout"))
        #expect(!checked.stdout.contains(Harness.secret))
    }
}
