import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The documented contract, as a browser gets it through nginx.conf.example.
@Suite(.serialized)
struct ContractThroughNginxTests {
    /// The answer's header block as curl receives it, with nginx's own `Server` and `Date` values
    /// checked for shape and then written as placeholders.
    static func normalizedHeaders(_ raw: String) -> String {
        let head = raw.components(separatedBy: "\r\n\r\n")[0]
        return head.components(separatedBy: "\r\n").map { line in
            if line.hasPrefix("Server: ") {
                let version = line.dropFirst("Server: ".count)
                return version == "nginx" || version.hasPrefix("nginx/") ? "Server: <nginx>" : line
            }
            if line.hasPrefix("Date: ") {
                // IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                return formatter.date(from: String(line.dropFirst("Date: ".count))) != nil ? "Date: <date>" : line
            }
            return line
        }.joined(separator: "\r\n")
    }

    @Test(arguments: ["production", "staging", "development"])
    func theAnswerIsTheContractByteForByte(appEnv: String) throws {
        try withTestStack(.init(environment: ["APP_ENV": appEnv])) { stack in
            let token = Seal.tokens(1, "contract")[0]
            let (answer, raw) = try stack.curl(headers: ["Cookie: crocante_session=\(try Seal.session(token))"])
            let secure = appEnv == "production" ? "; Secure" : ""
            #expect(
                Self.normalizedHeaders(raw) == """
                    HTTP/1.1 200 OK\r
                    Server: <nginx>\r
                    Date: <date>\r
                    Content-Type: application/json\r
                    Content-Length: 16\r
                    Connection: keep-alive\r
                    Cache-Control: no-store\r
                    Set-Cookie: \(Contract.clearedCookie)\(secure)
                    """)
            #expect(answer.body == #"{"success":true}"#)
            #expect(answer.body.utf8.count == Int(answer.header("Content-Length") ?? ""))
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 1, queued: 1, revoked: 1))
        }
    }

    /// HEAD gets the same status and headers with no body; nothing is revoked, the cookie is kept.
    @Test(arguments: ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PURGE"])
    func otherMethodsGet405AllowPostAndNoRevocation(method: String) throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let cookie = try Seal.session(Seal.tokens(1, "method")[0])
            let (answer, raw) = try stack.curl(method, headers: ["Cookie: crocante_session=\(cookie)"])
            #expect(answer.status == 405)
            #expect(
                Self.normalizedHeaders(raw) == """
                    HTTP/1.1 405 Method Not Allowed\r
                    Server: <nginx>\r
                    Date: <date>\r
                    Content-Type: application/json\r
                    Content-Length: 46\r
                    Connection: keep-alive\r
                    Cache-Control: no-store\r
                    Allow: POST
                    """)
            #expect(answer.header("Allow") == "POST")
            #expect(answer.header("Set-Cookie") == nil)
            #expect(answer.body == (method == "HEAD" ? "" : #"{"success":false,"error":"method not allowed"}"#))
            try stack.expectNoOtherCall(after: 0)
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 2, queued: 1, revoked: 1))
        }
    }

    @Test(arguments: [
        ["Content-Type: application/json"], ["Content-Type: application/x-www-form-urlencoded"], ["Transfer-Encoding: chunked"],
    ])
    func aPostWithABodyLogsOutAndRevokes(headers: [String]) throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let token = Seal.tokens(1, "body")[0]
            let body = Array(#"{"reason":"user","padding":"\#(String(repeating: "x", count: 2000))"}"#.utf8)
            let cookie = Array("crocante_session=\(try Seal.session(token))".utf8)
            let chunked = headers.contains("Transfer-Encoding: chunked")
            let request =
                chunked
                ? Array("POST /api/auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nCookie: ".utf8)
                    + cookie + Array("\r\n\r\n\(String(body.count, radix: 16))\r\n".utf8) + body + Array("\r\n0\r\n\r\n".utf8)
                : RawHTTP.request("POST", path: "/api/auth/logout", cookies: [cookie], headers: headers, body: body)
            let answer = try RawHTTP.parse(RawHTTP.exchange(port: stack.nginxPort, request))
            #expect(answer.status == 200)
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(answer.body == #"{"success":true}"#)
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
        }
    }

    /// nginx.conf.example caps bodies at 16k: nginx answers 413 itself; the responder never sees
    /// the request, so the cookie is neither cleared nor revoked.
    @Test func aBodyOverTheLimitIsRefusedByNginxBeforeTheResponder() throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let cookie = try Seal.session(Seal.tokens(1, "bigbody")[0])
            let answer = try stack.send(
                cookies: [Array("crocante_session=\(cookie)".utf8)], body: Array(repeating: UInt8(ascii: "a"), count: 17 * 1024))
            #expect(answer.status == 413)
            #expect(answer.header("Set-Cookie") == nil)
            try stack.expectNoOtherCall(after: 0)
            let stopped = stack.stopResponder()
            #expect(stopped.totals == ResponderTotals(requests: 1, queued: 1, revoked: 1))
        }
    }

    /// CROCANTE_LISTEN on TCP, nginx's upstream pointed at the same address.
    @Test(arguments: ["127.0.0.1", "::1"])
    func logoutOverTCP(host: String) throws {
        try withTestStack(.init(listen: .tcp(host: host))) { stack in
            #expect(stack.responder.stderr.contains("listen=\(stack.fastcgiAddress)"))
            let tokens = Seal.tokens(3, "tcp")
            for cookie in try Seal.sessions(tokens) {
                let answer = try stack.logout(cookie)
                #expect(answer.status == 200 && answer.body == #"{"success":true}"#)
                #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            }
            #expect(stack.backendReaches(3))
            #expect(Set(stack.backendBearers) == Set(tokens.map { "Bearer \($0)" }))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 3, queued: 3, revoked: 3))
        }
    }

    /// The default deployment: a unix socket the responder creates with CROCANTE_SOCKET_MODE and
    /// unlinks when it stops.
    @Test func logoutOverAUnixSocket() throws {
        try withTestStack(.init(environment: ["CROCANTE_SOCKET_MODE": "0606"])) { stack in
            var status = stat()
            try #require(lstat(stack.socketPath, &status) == 0)
            #expect(status.st_mode & S_IFMT == S_IFSOCK)
            #expect(status.st_mode & 0o777 == 0o606)
            let tokens = Seal.tokens(3, "unix")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.backendReaches(3))
            #expect(Set(stack.backendBearers) == Set(tokens.map { "Bearer \($0)" }))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 3, queued: 3, revoked: 3))
            #expect(lstat(stack.socketPath, &status) != 0 && errno == ENOENT, "the socket file is left behind")
        }
    }

    @Test func aQueryStringStillLogsOut() throws {
        try withTestStack { stack in
            let token = Seal.tokens(1, "query")[0]
            let answer = try stack.send(path: "/api/auth/logout?next=%2F&x=1", cookies: [Array("crocante_session=\(try Seal.session(token))".utf8)])
            #expect(answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
        }
    }

    /// A responder told to serve another path answers 404 to what nginx sends it, and revokes nothing.
    @Test func aPathTheResponderDoesNotServeIs404() throws {
        var environment = TestStack.oneAtATime
        environment["CROCANTE_LOGOUT_PATH"] = "/elsewhere"
        try withTestStack(.init(environment: environment)) { stack in
            let answer = try stack.logout(Seal.session(Seal.tokens(1, "path")[0]))
            #expect(answer.status == 404)
            #expect(answer.header("Set-Cookie") == nil)
            #expect(answer.body == #"{"success":false,"error":"not found"}"#)
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 1))
            #expect(stack.backendRequests().isEmpty)
        }
    }
}
