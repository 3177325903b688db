import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What operations rely on: status and ping, readiness notification, secrets from files and
/// credentials, and restarts under load that drop nothing.
@Suite(.serialized)
struct OperationsTests {
    @Test func statusCountsWhatHappenedAndPingAnswersPong() throws {
        let stack = try Stack()
        let cookies = try Harness.originCookies(plaintexts: ["status-a", "status-b"].map(Harness.originJSON(token:)))
        for cookie in cookies { #expect(try stack.logout(cookie: cookie).status == 200) }
        #expect(try stack.logout(cookie: nil).status == 200)
        #expect(try stack.request("GET").status == 405)
        #expect(Harness.waitUntil { stack.backendRequests().count == 2 })

        let ping = try stack.request("GET", path: "/crocante-logout/ping")
        #expect(ping.status == 200 && ping.body == "pong" && ping.header("Content-Type") == "text/plain")

        // Revocations are counted when the backend's answer has been processed: poll for it.
        var status: [String: Int] = [:]
        #expect(try Harness.waitUntil {
            let answer = try stack.request("GET", path: "/crocante-logout/status")
            status = (try? JSONDecoder().decode([String: Int].self, from: Data(answer.body.utf8))) ?? [:]
            return status["revocations_revoked"] == 2
        })
        #expect(status["logouts"] == 3)
        #expect(status["sessions_opened"] == 2)
        #expect(status["revocations_queued"] == 2)
        #expect(status["revocations_failed"] == 0 && status["revocations_dropped"] == 0)
        #expect(status["total_workers"] == 4)
        #expect(status["queue_capacity"] == 10_000 && status["queue_depth"] == 0)
        #expect((status["accepted_requests"] ?? 0) >= 5)
        #expect((status["active_workers"] ?? 0) >= 1)  // the worker answering this very request

        let prometheus = try stack.request("GET", path: "/crocante-logout/status?format=prometheus")
        #expect(prometheus.header("Content-Type") == "text/plain; version=0.0.4")
        #expect(prometheus.body.contains("\ncrocante_logout_logouts_total 3\n"))
        #expect(prometheus.body.contains("# TYPE crocante_logout_revocations_revoked_total counter\n"))
        #expect(prometheus.body.contains("\ncrocante_logout_queue_capacity 10000\n"))
    }

    @Test func readinessAndStoppingAreNotifiedToTheServiceManager() throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let notifyPath = directory.appendingPathComponent("notify").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let bound = Socket.withSockaddr(Socket.unix(notifyPath)) { bind(fd, $0, $1) }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func nextMessage() -> String {
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
        }

        let stack = try Stack(environment: ["NOTIFY_SOCKET": notifyPath])
        #expect(nextMessage() == "READY=1\nMAINPID=\(stack.responder.pid)")
        stack.responder.send(SIGTERM)
        #expect(nextMessage() == "STOPPING=1")
        #expect(stack.responder.waitForExit() == 0)
    }

    @Test(arguments: ["file", "credential"])
    func theSecretCanComeFromAFile(source: String) throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = "secret-from-a-file-0123456789abcdef0123"
        let path = directory.appendingPathComponent("session_secret")
        try (secret + "\n").write(to: path, atomically: true, encoding: .utf8)
        let environment =
            source == "file"
            ? ["SESSION_SECRET": "", "SESSION_SECRET_FILE": path.path]
            : ["SESSION_SECRET": "", "CREDENTIALS_DIRECTORY": directory.path]
        let stack = try Stack(environment: environment)
        let cookie = try Harness.originCookies(plaintexts: [Harness.originJSON(token: "filed-token")], secret: secret)[0]
        #expect(try stack.logout(cookie: cookie).status == 200)
        #expect(Harness.waitUntil { stack.backendRequests().count == 1 })
        #expect(stack.backendRequests().first?.header("Authorization") == "Bearer filed-token")
        stack.responder.send(SIGTERM)
        #expect(stack.responder.waitForExit() == 0)
        #expect(!stack.responder.stderr.contains(secret))
    }

    @Test func anUnreadableSecretFileExits78() throws {
        let result = try Harness.run(
            Harness.product("crocante-logout").path, ["check-config"],
            environment: ["SESSION_SECRET_FILE": "/nonexistent/secret", "API_GATEWAY": "http://127.0.0.1:9", "EP_AUTH_LOGOUT": "x"])
        #expect(result.status == 78)
        #expect(result.stderr == "crocante-logout: SESSION_SECRET_FILE is invalid: cannot read \"/nonexistent/secret\"\n")
    }

    /// systemd's restart with the socket held: the old process finishes what it serves and
    /// drains its revocations, the new one takes over the backlog. Under load through nginx,
    /// nothing is refused and every revocation is accounted for.
    @Test func restartsUnderLoadDropNothing() throws {
        let stack = try Stack(holdSocket: true)
        let cookie = try Harness.originCookies(plaintexts: [Harness.originJSON(token: "restart-load-token")])[0]
        let load = LoadClient(port: stack.nginxPort, cookie: cookie)
        load.start(connections: 8)
        var responders = [stack.responder!]
        for _ in 0..<3 {
            let before = load.current.total
            #expect(Harness.waitUntil { load.current.total >= before + 200 })
            stack.responder.send(SIGTERM)
            #expect(stack.responder.waitForExit() == 0)
            try stack.startResponder()
            responders.append(stack.responder)
        }
        let before = load.current.total
        #expect(Harness.waitUntil { load.current.total >= before + 200 })
        let tally = load.stop()
        stack.responder.send(SIGTERM)
        #expect(stack.responder.waitForExit() == 0)

        print("restarts under load: \(responders.count) responders, \(tally.total) answers \(tally.statuses), \(tally.socketErrors) socket errors")
        #expect(tally.socketErrors == 0)
        #expect(tally.statuses.keys.sorted() == [200], "answers: \(tally.statuses)")
        let revoked = responders.map { Self.figure("revoked", in: $0.stderr) }.reduce(0, +)
        let lost = responders.map { Self.figure("lost", in: $0.stderr) + Self.figure("dropped", in: $0.stderr) }.reduce(0, +)
        #expect(revoked == tally.total)
        #expect(lost == 0)
        #expect(stack.backendRequests().count == tally.total)
    }

    /// A number from the responder's `stopped` line, e.g. `revoked=12`.
    static func figure(_ name: String, in log: String) -> Int {
        guard let line = log.split(separator: "\n").last(where: { $0.hasSuffix(" stopped") }),
            let field = line.split(separator: " ").first(where: { $0.hasPrefix(name + "=") })
        else { return -1 }
        return Int(field.dropFirst(name.count + 1)) ?? -1
    }
}
