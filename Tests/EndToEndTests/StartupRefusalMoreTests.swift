import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Start-up refusals beyond ``StartupRefusalTests``: every setting's bad values, flags over
/// variables, and socket paths that cannot be used. Each is one stderr line naming the setting,
/// exit 78 (or 71 for the socket), no secret echoed, and nothing created before the refusal.
@Suite struct StartupRefusalMoreTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        let settings: [String: String]
        let arguments: [String]
        let message: String
        var testDescription: String { "\(settings) \(arguments) → \(message)" }

        init(_ settings: [String: String], _ message: String, flags arguments: [String] = []) {
            self.settings = settings
            self.arguments = arguments
            self.message = message
        }
    }

    static let shortPrevious = "short-previous-secret"

    static let refusals: [Refusal] = [
        // Secrets: a bad previous secret is as fatal as a bad current one, and never echoed.
        Refusal(["SESSION_SECRET": ""], "SESSION_SECRET is not set"),
        Refusal(["SESSION_SECRET_PREVIOUS": shortPrevious], "SESSION_SECRET_PREVIOUS is invalid: must be at least 32 bytes"),
        Refusal(["SESSION_SECRET_PREVIOUS": "default-secret"], "SESSION_SECRET_PREVIOUS is invalid: the origin's public fallback secret is refused"),
        // Next.js ships NEXT_PUBLIC_* to the browser: a secret is never read from there.
        Refusal(["SESSION_SECRET": "", "NEXT_PUBLIC_SESSION_SECRET": Harness.secret], "SESSION_SECRET is not set"),
        Refusal(["API_GATEWAY": ""], "API_GATEWAY is not set"),
        Refusal(["API_GATEWAY": "not a url"], "API_GATEWAY is invalid"),
        Refusal(["API_GATEWAY": "http://"], "API_GATEWAY is invalid"),
        Refusal(["API_GATEWAY": "127.0.0.1:8080"], "API_GATEWAY is invalid"),
        Refusal(["API_GATEWAY": "http://127.0.0.1:9/?x=1"], "API_GATEWAY is invalid"),
        Refusal(["API_GATEWAY": "http://127.0.0.1:9/#top"], "API_GATEWAY is invalid"),
        Refusal(["EP_AUTH_LOGOUT": "/"], "EP_AUTH_LOGOUT is invalid"),
        Refusal(["EP_AUTH_LOGOUT": "auth/log out"], "EP_AUTH_LOGOUT is invalid"),
        Refusal(["APP_ENV": "prod"], "APP_ENV is invalid"),
        Refusal(["APP_ENV": "Production"], "APP_ENV is invalid"),
        Refusal(["CROCANTE_LISTEN": "unix:relative.sock"], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_LISTEN": "unix:/tmp/" + String(repeating: "s", count: 110)], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_LISTEN": "127.0.0.1:0"], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_LISTEN": "127.0.0.1:70000"], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_LISTEN": "localhost:9000"], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_LISTEN": "::1:9000"], "CROCANTE_LISTEN is invalid"),
        Refusal(["CROCANTE_SOCKET_MODE": "0999"], "CROCANTE_SOCKET_MODE is invalid"),
        Refusal(["CROCANTE_SOCKET_MODE": "1777"], "CROCANTE_SOCKET_MODE is invalid"),
        Refusal(["CROCANTE_WORKERS": "1025"], "CROCANTE_WORKERS is invalid"),
        Refusal(["CROCANTE_WORKERS": "-1"], "CROCANTE_WORKERS is invalid"),
        Refusal(["CROCANTE_WORKERS": " 4"], "CROCANTE_WORKERS is invalid"),
        Refusal(["CROCANTE_LOGOUT_PATH": "api/auth/logout"], "CROCANTE_LOGOUT_PATH is invalid"),
        Refusal(["CROCANTE_LOGOUT_PATH": "/api/auth/logout?x"], "CROCANTE_LOGOUT_PATH is invalid"),
        Refusal(["CROCANTE_STATUS_PATH": "/api/auth/logout"], "CROCANTE_STATUS_PATH is invalid"),
        Refusal(["CROCANTE_QUEUE_CAPACITY": "0"], "CROCANTE_QUEUE_CAPACITY is invalid"),
        Refusal(["CROCANTE_BACKEND_CONCURRENCY": "0"], "CROCANTE_BACKEND_CONCURRENCY is invalid"),
        Refusal(["CROCANTE_BACKEND_CONNECT_TIMEOUT_MS": "0"], "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS is invalid"),
        Refusal(["CROCANTE_BACKEND_TIMEOUT_MS": "300001"], "CROCANTE_BACKEND_TIMEOUT_MS is invalid"),
        Refusal(["CROCANTE_DRAIN_TIMEOUT_MS": "1e3"], "CROCANTE_DRAIN_TIMEOUT_MS is invalid"),
        Refusal(["CROCANTE_LOG_LEVEL": "verbose"], "CROCANTE_LOG_LEVEL is invalid"),
        Refusal(["CROCANTE_CLEAR_SITE_DATA": "cookie"], "CROCANTE_CLEAR_SITE_DATA is invalid"),
        Refusal(["CROCANTE_CLEAR_SITE_DATA": "cookies, cookies"], "CROCANTE_CLEAR_SITE_DATA is invalid"),
        // A flag wins over its variable, and is validated the same way.
        Refusal(["CROCANTE_WORKERS": "4"], "CROCANTE_WORKERS is invalid", flags: ["--workers", "0"]),
        Refusal([:], "API_GATEWAY is invalid", flags: ["--api-gateway", "ftp://127.0.0.1"]),
        Refusal([:], "APP_ENV is invalid", flags: ["serve", "--app-env", "prod"]),
    ]

    @Test(arguments: refusals)
    func aBadSettingIsOneLineAndExit78(_ refusal: Refusal) throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socketPath = directory.appendingPathComponent("fcgi.sock").path
        var environment = StartupRefusalTests.valid
        environment["CROCANTE_LISTEN"] = "unix:\(socketPath)"
        environment.merge(refusal.settings) { $1 }
        SecretLedger.record(Self.shortPrevious)
        let result = try Harness.run(Harness.product("crocante-logout").path, refusal.arguments, environment: environment)
        #expect(result.status == 78)
        #expect(result.stderr.hasPrefix("crocante-logout: \(refusal.message)"), "\(result.stderr)")
        #expect(result.stderr.hasSuffix("\n") && result.stderr.split(separator: "\n").count == 1)
        #expect(SecretLedger.leaks(in: result.stderr + result.stdout).isEmpty, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: socketPath), "a socket was created before the refusal")
    }

    /// A regular file where the socket should go is never replaced: exit 71, the file intact.
    @Test func aFileInTheSocketsPlaceExits71AndIsKept() throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("fcgi.sock").path
        try "keep me".write(toFile: path, atomically: true, encoding: .utf8)
        var environment = StartupRefusalTests.valid
        environment["CROCANTE_LISTEN"] = "unix:\(path)"
        let result = try Harness.run(Harness.product("crocante-logout").path, [], environment: environment)
        #expect(result.status == 71)
        #expect(result.stderr.hasPrefix("crocante-logout: cannot listen on unix:\(path): \(path) exists and is not a socket"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "keep me")
    }

    /// A socket file left by a responder that was killed is replaced, and the new responder serves.
    @Test func aSocketLeftByAKilledResponderIsReplaced() throws {
        try withTestStack { stack in
            stack.responder.send(SIGKILL)
            _ = stack.responder.waitForExit()
            #expect(FileManager.default.fileExists(atPath: stack.socketPath), "SIGKILL leaves the socket file behind")
            try stack.startResponder()
            let token = Seal.tokens(1, "restarted")[0]
            #expect(try stack.logout(Seal.session(token)).status == 200)
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
        }
    }
}
