import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built responder behind a real nginx, with a recording stand-in backend.
@Suite(.serialized)
struct LogoutThroughNginxTests {
    @Test func logoutAnswersExactlyAndRevokesWithTheBearerToken() throws {
        try withTestStack { stack in
            let tokens = ["first.jwt-shaped_token", "second-token"]
            let cookies = try Seal.sessions(tokens)

            let answer = try stack.logout(cookies[0])
            #expect(answer.status == 200)
            #expect(answer.body == #"{"success":true}"#)
            #expect(answer.header("Content-Type") == "application/json")
            #expect(answer.header("Content-Length") == "16")
            #expect(answer.header("Cache-Control") == "no-store")
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)

            // No cookie: same answer, no backend call. The next valid logout proves the ordering.
            let anonymous = try stack.logout(nil)
            #expect(anonymous.status == 200 && anonymous.header("Set-Cookie") == Contract.clearedSecureCookie)
            _ = try stack.logout(cookies[1])

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

            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals?.revoked == 2)
            let log = stack.responder.stderr
            for secret in tokens + cookies + [Harness.secret] {
                #expect(!log.contains(secret), "the responder's log holds a token, cookie or secret")
            }
        }
    }

    @Test func developmentClearsTheCookieWithoutSecure() throws {
        try withTestStack(.init(environment: ["APP_ENV": "development"])) { stack in
            let answer = try stack.logout(nil)
            #expect(answer.status == 200)
            #expect(answer.header("Set-Cookie") == Contract.clearedCookie)
        }
    }

    @Test(arguments: ["GET", "PUT", "DELETE", "OPTIONS"])
    func otherMethodsAreRefusedWithoutTouchingTheCookie(method: String) throws {
        try withTestStack { stack in
            let cookie = try Seal.session("not-to-be-revoked")
            let answer = try stack.curl(method, headers: ["Cookie: crocante_session=\(cookie)"]).answer
            #expect(answer.status == 405)
            #expect(answer.header("Allow") == "POST")
            #expect(answer.header("Set-Cookie") == nil)
            #expect(answer.body.contains(#""success":false"#))
            #expect(stack.stopResponder().status == 0)
            #expect(stack.backendRequests().isEmpty)
        }
    }

    @Test func aBackendThatNeverAnswersDoesNotDelayTheLogout() throws {
        try withTestStack(.init(backend: ["--behavior", "blackhole"])) { stack in
            let answer = try stack.logout(Seal.session("held-by-a-blackhole"))
            // The answer is complete; the backend has the request and has not answered, nor ever will.
            #expect(answer.status == 200 && answer.body == #"{"success":true}"#)
            #expect(Harness.waitUntil { stack.backendRequests().count == 1 })
            #expect(try stack.logout(nil).status == 200)
        }
    }

    @Test(arguments: [["--status", "500"], ["--status", "401"], ["--behavior", "reset"], nil] as [[String]?])
    func aFailingBackendStillLogsOut(backend: [String]?) throws {
        try withTestStack(.init(backend: backend)) { stack in
            let answer = try stack.logout(Seal.session("backend-trouble"))
            #expect(answer.status == 200)
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            // A 401 is final; anything else is retried until the stop, then (no spool) lost.
            let outcome = backend == ["--status", "401"] ? "revocations_rejected" : "revocations_lost"
            #expect(stack.responder.finalStatus?[outcome] == 1, "\(stack.responder.finalStatus.map(\.description) ?? "no final status")")
        }
    }
}

/// Start-up refusals: one stderr line, a documented exit status, nothing left running.
@Suite struct StartupRefusalTests {
    /// Runs the responder with ``valid`` but `name` set to `value` (nil: unset).
    static func start(setting name: String, to value: String?) throws -> (status: Int32, stderr: String) {
        var environment = valid
        environment[name] = value
        let result = try Harness.run(Harness.product("crocante-logout").path, [], environment: environment)
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
        let (status, stderr) = try Self.start(setting: name, to: value)
        #expect(status == 78)
        #expect(stderr == "crocante-logout: \(message)" + stderr.dropFirst("crocante-logout: \(message)".count))
        #expect(stderr.split(separator: "\n").count == 1)
        #expect(!stderr.contains(Harness.secret))
    }

    @Test func aMissingSocketDirectoryExits71() throws {
        let (status, stderr) = try Self.start(setting: "CROCANTE_LISTEN", to: "unix:/nonexistent-dir-for-crocante/fcgi.sock")
        #expect(status == 71)
        #expect(stderr.hasPrefix("crocante-logout: cannot listen on unix:/nonexistent-dir-for-crocante/fcgi.sock"))
    }

    @Test func anAddressInUseExits71() throws {
        let port = try Socket.freeTCPPort()
        let holder = try Socket.listening(AF_INET, on: Socket.inet(port: port), label: "127.0.0.1:\(port)")
        defer { close(holder) }
        let (status, stderr) = try Self.start(setting: "CROCANTE_LISTEN", to: "127.0.0.1:\(port)")
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
