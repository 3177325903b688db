import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A misconfigured nginx, clients that give up, slow clients, and broken FastCGI connections:
/// the responder keeps answering and no worker stays pinned.
@Suite(.serialized)
struct AbuseThroughNginxTests {
    /// `fastcgi_keep_conn on` with an upstream `keepalive 16`, eight times the two workers, and
    /// 32 clients at once: every request gets an answer at once, every logout answered 200 is
    /// revoked, and afterwards no FastCGI connection is left open and no worker is busy, because
    /// the responder closes every connection after its answer whatever nginx asked for.
    ///
    /// Observed, and the reason nginx.conf.example leaves `keepalive` off: nginx keeps the closed
    /// connection in its cache and now and then sends the next request on it before it notices
    /// the close. The responder's lingering close reads and discards that request; nginx then
    /// logs "upstream prematurely closed connection" and, the request being a POST (not
    /// idempotent), does not retry it: the browser gets nginx's 502 (no cleared cookie, no
    /// revocation). Under the parallel test run this hit about 1 in 100 logouts. With
    /// `fastcgi_next_upstream error timeout non_idempotent;` (in nginx.conf.example) nginx retries
    /// such a POST on a fresh connection, which is safe here because the discarded request was
    /// never processed.
    ///
    /// With `CROCANTE_KEEP_CONNECTIONS=on` sixteen kept connections for two workers pin none of
    /// them either: they wait idle in the set the workers share, and none is closed under nginx,
    /// so every logout is answered on its first try, with or without the retry.
    @Test(arguments: [false, true], [false, true])
    func keepAliveLargerThanTheWorkerPoolPinsNoWorker(retryPost: Bool, keepConnections: Bool) throws {
        var site = [
            ("\nupstream crocante_logout {\n", "\nupstream crocante_logout {\n    keepalive 16;\n"),
            ("fastcgi_keep_conn off;", "fastcgi_keep_conn on;"),
        ]
        // nginx.conf.example retries a failed POST; the case without it shows why it does.
        if !retryPost { site.append(("fastcgi_next_upstream error timeout non_idempotent;", "")) }
        let environment = ["CROCANTE_WORKERS": "2", "CROCANTE_KEEP_CONNECTIONS": keepConnections ? "on" : "off"]
        try withTestStack(.init(environment: environment, site: site)) { stack in
            let configuration = try stack.siteConfiguration()
            #expect(configuration.contains("    keepalive 16;\n") && !configuration.contains("fastcgi_keep_conn off;"))
            let clients = 32, perClient = 4
            let tokens = Seal.tokens(clients * perClient, "keepalive")
            let cookies = try Seal.sessions(tokens)
            let port = stack.nginxPort
            let answers = onThreads(clients) { client in
                (0..<perClient).map { round -> (token: String, status: Int) in
                    let index = client * perClient + round
                    guard let answer = try? RawHTTP.parse(RawHTTP.exchange(port: port, RawHTTP.logout(cookie: cookies[index]))) else { return (tokens[index], -1) }
                    let complete = answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie && answer.body == #"{"success":true}"#
                    return (tokens[index], complete ? 200 : answer.status)
                }
            }.flatMap { $0 }
            let answered = answers.filter { $0.status == 200 }.map(\.token)
            let refused = answers.filter { $0.status == 502 }.count
            let postErrors = stack.nginxErrorLog.split(separator: "\n").filter { $0.contains("[error]") && $0.contains(#"request: "POST /api/auth/logout"#) }
            if refused > 0 { print("keep-alive misconfiguration: \(refused) of \(answers.count) logouts got nginx's 502") }
            #expect(Set(answers.map(\.status)).isSubset(of: retryPost || keepConnections ? [200] : [200, 502]), "\(answers.map(\.status))")
            // Each 502 is one request nginx sent on a connection the responder had closed.
            if !retryPost { #expect(postErrors.count == refused, "\(postErrors.joined(separator: "\n"))") }
            let connectionLost = ["upstream prematurely closed connection", "Connection reset by peer", "Broken pipe"]
            #expect(postErrors.allSatisfy { line in connectionLost.contains { line.contains($0) } }, "\(postErrors)")
            // Closing, nothing holds the socket open; kept, nginx's idle connections stay, holding
            // no worker. The one busy worker is the one answering the status request.
            if keepConnections {
                #expect(postErrors.isEmpty, "\(postErrors)")
                #expect(Proc.connectedUnixSockets(path: stack.socketPath) <= 16 + 1)
            } else {
                #expect(Harness.waitUntil { Proc.connectedUnixSockets(path: stack.socketPath) == 0 })
            }
            let status = try stack.status()
            #expect(status["active_workers"] == 1 && status["total_workers"] == 2, "\(status)")
            #expect(stack.backendReaches(answered.count))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals?.revoked == answered.count && stopped.totals?.requests == answered.count + 1, "\(stopped.totals.map(\.description) ?? "no final status")")
            #expect(stack.backendBearers.sorted() == answered.map { "Bearer \($0)" }.sorted())
        }
    }

    /// Clients that give up at every stage: mid-request-line, after a full request without
    /// reading (a reset), after a full request with a FIN, and curl giving up after 1 ms or mid-body. None
    /// carries a session; the ten valid logouts after them are all answered and revoked, and
    /// nothing else reaches the backend.
    @Test func clientsThatGiveUpDoNotStopTheResponder() throws {
        try withTestStack(.init(environment: ["CROCANTE_WORKERS": "2"])) { stack in
            let port = stack.nginxPort
            let partial = Array("POST /api/auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nCook".utf8)
            let full = RawHTTP.logout(cookie: "not-a-session")
            _ = onThreads(8) { _ in
                for round in 0..<25 {
                    guard let fd = try? Socket.connectTCP(port: port) else { continue }
                    switch round % 3 {
                    case 0:
                        try? Socket.writeAll(fd, partial)
                        close(fd)
                    case 1:
                        try? Socket.writeAll(fd, full)
                        Socket.abort(fd)
                    default:
                        try? Socket.writeAll(fd, full)
                        shutdown(fd, Int32(SHUT_RDWR))
                        close(fd)
                    }
                }
            }
            // curl giving up: after 1 ms (wherever that falls), and mid-body, uploading 15 KiB at
            // 1 KiB/s with a 0.1 s limit (exit 28: operation timed out).
            let url = "http://127.0.0.1:\(port)/api/auth/logout"
            let curlStatuses = onThreads(20) { index -> Int32 in
                let arguments =
                    index < 10
                    ? ["-sS", "-o", "/dev/null", "--max-time", "0.001", "-X", "POST", url]
                    : ["-sS", "-o", "/dev/null", "--max-time", "0.1", "--limit-rate", "1k", "--data-binary",
                       String(repeating: "x", count: 15 * 1024), url]
                return (try? Harness.run("/usr/bin/curl", arguments).status) ?? -1
            }
            #expect(curlStatuses.allSatisfy { $0 == 0 || $0 == 28 }, "\(curlStatuses)")
            #expect(curlStatuses.suffix(10).allSatisfy { $0 == 28 }, "curl did not give up mid-body: \(curlStatuses)")
            #expect(stack.responder.isRunning)

            let tokens = Seal.tokens(10, "after-abort")
            for cookie in try Seal.sessions(tokens) {
                let answer = try stack.logout(cookie)
                #expect(answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            }
            #expect(stack.backendReaches(10))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals?.revoked == 10 && stopped.totals?.queued == 10)
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
        }
    }

    /// nginx reads a request whole before it connects upstream: clients stuck mid-headers or
    /// mid-body hold no worker, so with two workers and eight such clients open, logouts go on.
    @Test func slowClientsHoldNoWorker() throws {
        try withTestStack(.init(environment: ["CROCANTE_WORKERS": "2"])) { stack in
            var slow: [Int32] = []
            defer { slow.forEach { close($0) } }
            for index in 0..<8 {
                let fd = try Socket.connectTCP(port: stack.nginxPort)
                slow.append(fd)
                let text =
                    index % 2 == 0
                    ? "POST /api/auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a=1"
                    : "POST /api/auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"half\":"
                try Socket.writeAll(fd, Array(text.utf8))
            }
            let tokens = Seal.tokens(6, "beside-slow")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.backendReaches(6))
            let status = try stack.status()
            #expect(status["active_workers"] == 1, "\(status)")
        }
    }

    /// Straight at the responder's socket: connections closed at once, garbage, half a FastCGI
    /// request, a whole one reset before its answer is read. Every worker survives: logouts
    /// through nginx and straight over FastCGI are answered afterwards, and only they revoke.
    @Test func brokenFastCGIConnectionsDoNotStopTheResponder() throws {
        try withTestStack(.init(environment: ["CROCANTE_WORKERS": "2"])) { stack in
            let path = stack.socketPath
            let whole = FastCGIClient.request(cookie: nil)
            _ = onThreads(4) { thread in
                for round in 0..<40 {
                    guard let fd = try? Socket.connectUnix(path: path) else { continue }
                    switch (thread + round) % 4 {
                    case 0:
                        close(fd)
                    case 1:
                        try? Socket.writeAll(fd, Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8) + Seal.randomBytes(64))
                        close(fd)
                    case 2:
                        try? Socket.writeAll(fd, Array(whole.prefix(whole.count / 2)))
                        close(fd)
                    default:
                        try? Socket.writeAll(fd, whole)
                        Socket.abort(fd)
                    }
                }
            }
            #expect(stack.responder.isRunning)
            let tokens = Seal.tokens(8, "after-broken")
            let cookies = try Seal.sessions(tokens)
            for cookie in cookies.prefix(4) { #expect(try stack.logout(cookie).status == 200) }
            for cookie in cookies.suffix(4) {
                let response = try FastCGIClient.exchange(unixSocket: path, FastCGIClient.request(cookie: cookie))
                #expect(response.hasPrefix("Status: 200 OK\r\n") && response.hasSuffix("\r\n\r\n{\"success\":true}"), "\(response)")
            }
            #expect(stack.backendReaches(8))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals?.revoked == 8 && stopped.totals?.queued == 8)
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
        }
    }
}
