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
        try withTestStack { stack in
            let cookies = try Seal.sessions(["status-a", "status-b"])
            for cookie in cookies { #expect(try stack.logout(cookie).status == 200) }
            #expect(try stack.logout(nil).status == 200)
            #expect(try stack.curl("GET").answer.status == 405)
            #expect(Harness.waitUntil { stack.backendRequests().count == 2 })

            let ping = try stack.curl("GET", path: "/crocante-logout/ping").answer
            #expect(ping.status == 200 && ping.body == "pong" && ping.header("Content-Type") == "text/plain")

            // Revocations are counted when the backend's answer has been processed: poll for it.
            var status: [String: Int] = [:]
            #expect(try Harness.waitUntil {
                status = try stack.status()
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

            let prometheus = try stack.curl("GET", path: "/crocante-logout/status?format=prometheus").answer
            #expect(prometheus.header("Content-Type") == "text/plain; version=0.0.4")
            #expect(prometheus.body.contains("\ncrocante_logout_logouts_total 3\n"))
            #expect(prometheus.body.contains("# TYPE crocante_logout_revocations_revoked_total counter\n"))
            #expect(prometheus.body.contains("\ncrocante_logout_queue_capacity 10000\n"))
        }
    }

    /// Every stack waits for READY=1 on the responder's own notify socket; here the messages themselves.
    @Test func readinessAndStoppingAreNotifiedToTheServiceManager() throws {
        try withTestStack { stack in
            #expect(stack.responder.notifications == ["READY=1\nMAINPID=\(stack.responder.pid)"])
            stack.responder.send(SIGTERM)
            #expect(stack.responder.nextNotification() == "STOPPING=1")
            #expect(stack.responder.waitForExit() == 0)
        }
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
        try withTestStack(.init(environment: environment)) { stack in
            let cookie = try Seal.session("filed-token", secret: secret)
            #expect(try stack.logout(cookie).status == 200)
            #expect(Harness.waitUntil { stack.backendRequests().count == 1 })
            #expect(stack.backendRequests().first?.header("Authorization") == "Bearer filed-token")
            #expect(stack.stopResponder().status == 0)
            #expect(!stack.responder.stderr.contains(secret))
        }
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
    /// nothing is refused and every revocation is accounted for: each answer's session was
    /// revoked, or was a duplicate of one pending at that moment (the sessions come round again).
    @Test func restartsUnderLoadDropNothing() throws {
        try withTestStack(.init(environment: ["CROCANTE_DEDUP_WINDOW": "0s"], listen: .systemdSocket)) { stack in
            let load = LoadClient(port: stack.nginxPort, cookies: try Seal.sessions(Seal.tokens(1500, "restart")))
            load.start(connections: 8)
            for _ in 0..<3 {
                let before = load.current.total
                #expect(Harness.waitUntil { load.current.total >= before + 200 })
                #expect(stack.stopResponder().status == 0)
                try stack.startResponder()
            }
            let before = load.current.total
            #expect(Harness.waitUntil { load.current.total >= before + 200 })
            let tally = load.stop()
            #expect(stack.stopResponder().status == 0)

            let responders = stack.responders
            print("restarts under load: \(responders.count) responders, \(tally.total) answers \(tally.statuses), \(tally.socketErrors) socket errors")
            #expect(tally.socketErrors == 0)
            #expect(tally.statuses.keys.sorted() == [200], "answers: \(tally.statuses)")
            // A responder without a final status (it did not stop cleanly) counts -1, so the sums fail.
            let revoked = responders.map { $0.totals?.revoked ?? -1 }.reduce(0, +)
            let duplicate = responders.map { $0.finalStatus?["revocations_duplicate"] ?? -1 }.reduce(0, +)
            let lost = responders.map { $0.totals.map { $0.lost + $0.dropped } ?? -1 }.reduce(0, +)
            #expect(revoked + duplicate == tally.total)
            #expect(lost == 0)
            #expect(stack.backendRequests().count == revoked)
        }
    }
}
