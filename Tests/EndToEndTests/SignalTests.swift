import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT: idle, with requests in flight, under load through nginx, with
/// revocations queued, and twice.
@Suite(.serialized)
struct SignalTests {
    static func name(_ signal: Int32) -> String { signal == SIGTERM ? "SIGTERM" : "SIGINT" }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalWhileIdleStopsCleanly(signal: Int32) throws {
        try withTestStack { stack in
            let tokens = Seal.tokens(3, "idle")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.backendReaches(3))
            #expect(Harness.waitUntil { stack.responder.stderr.components(separatedBy: "revocation revoked").count == 4 })
            let stopped = stack.stopResponder(signal)
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 3, queued: 3, revoked: 3))
            let log = stack.responder.stderr
            #expect(log.contains("signal=\(Self.name(signal)) [LogoutService] stopping"))
            #expect(!log.contains(" error ") && !log.contains(" critical "), "\(log)")
            #expect(!FileManager.default.fileExists(atPath: stack.socketPath))
        }
    }

    /// Requests half-sent over FastCGI when the signal arrives (four held by the four workers,
    /// two waiting in the backlog) are finished after `stopping` is logged: all six answered 200
    /// and revoked, then exit 0.
    @Test(arguments: [SIGTERM, SIGINT])
    func requestsInFlightAtTheSignalAreAnswered(signal: Int32) throws {
        try withTestStack { stack in
            let tokens = Seal.tokens(6, "inflight")
            let requests = try Seal.sessions(tokens).map { FastCGIClient.request(cookie: $0) }
            var connections: [Int32] = []
            defer { connections.forEach { close($0) } }
            for request in requests {
                let fd = try Socket.connectUnix(path: stack.socketPath)
                connections.append(fd)
                try Socket.writeAll(fd, Array(request.prefix(request.count / 2)))
            }
            stack.responder.send(signal)
            #expect(Harness.waitUntil { stack.responder.stderr.contains("[LogoutService] stopping") })
            #expect(stack.responder.isRunning)
            for (fd, request) in zip(connections, requests) { try Socket.writeAll(fd, Array(request.suffix(from: request.count / 2))) }
            // Each connection is closed once read, as nginx does: libfcgi's lingering close keeps a
            // worker until the peer closes (up to 2 s), and the backlog waits for a free worker.
            for fd in connections {
                let response = try FastCGIClient.response(on: fd)
                shutdown(fd, Int32(SHUT_RDWR))
                #expect(response.hasPrefix("Status: 200 OK\r\n"), "\(response)")
                #expect(response.contains("Set-Cookie: \(Contract.clearedSecureCookie)\r\n"))
                #expect(response.hasSuffix("\r\n\r\n{\"success\":true}"))
            }
            #expect(stack.responder.waitForExit() == 0)
            #expect(stack.responder.totals == ResponderTotals(requests: 6, queued: 6, revoked: 6))
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
        }
    }

    /// Eight clients log out through nginx in a loop; the signal comes once fifty revocations are
    /// in. Every answer is a complete 200 or nginx's 502 once the socket is gone (never a cut or
    /// garbled one), the responder exits 0, and the backend got exactly the sessions answered 200.
    @Test(arguments: [SIGTERM, SIGINT])
    func underLoadEveryAnsweredSessionIsRevokedBeforeExit(signal: Int32) throws {
        try withTestStack { stack in
            // Enough distinct sessions that no client repeats one before the signal, even when the
            // machine is loaded (a repeat is a duplicate, not queued again).
            let clients = 8, perClient = 40
            let tokens = Seal.tokens(clients * perClient, "load")
            let cookies = try Seal.sessions(tokens)
            let port = stack.nginxPort
            let responderPID = stack.responder.pid
            let counter = SharedCounter()
            let results = onThreads(clients + 1) { client -> [(token: String, status: Int)] in
                if client == clients {
                    // The signaller: after fifty answers, while the clients keep going.
                    let deadline = ContinuousClock.now + .seconds(30)  // only a guard against a hang
                    while counter.value.load(ordering: .relaxed) < 50 && ContinuousClock.now < deadline { usleep(1000) }
                    kill(responderPID, signal)
                    return []
                }
                var seen: [(token: String, status: Int)] = []
                var round = 0
                while true {
                    let index = client * perClient + round % perClient
                    round += 1
                    let answer = try? RawHTTP.parse(RawHTTP.exchange(port: port, RawHTTP.logout(cookie: cookies[index])))
                    let complete = answer.map { $0.status == 200 && $0.body == #"{"success":true}"# && $0.header("Set-Cookie") == Contract.clearedSecureCookie }
                    seen.append((tokens[index], complete == true ? 200 : answer?.status ?? -1))
                    guard complete == true else { break }
                    counter.value.add(1, ordering: .relaxed)
                }
                return seen
            }.flatMap { $0 }
            #expect(stack.responder.waitForExit() == 0)
            let statuses = Set(results.map(\.status))
            #expect(statuses.isSubset(of: [200, 502]), "answers: \(statuses)")
            let answered = results.filter { $0.status == 200 }.map(\.token)
            #expect(answered.count >= 50)
            #expect(stack.responder.totals == ResponderTotals(requests: answered.count, queued: answered.count, revoked: answered.count))
            #expect(stack.backendBearers.sorted() == answered.map { "Bearer \($0)" }.sorted())
        }
    }

    /// Two backend calls at a time, each answered after 300 ms, and the signal right after ten
    /// logouts: revocations still waiting in the queue are delivered during the drain, before exit.
    @Test func queuedRevocationsAreDeliveredBeforeExit() throws {
        let options = TestStack.Options(backend: ["--delay-ms", "300"], environment: ["CROCANTE_BACKEND_CONCURRENCY": "2"])
        try withTestStack(options) { stack in
            let tokens = Seal.tokens(10, "queued")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 10, queued: 10, revoked: 10))
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
            // At least eight outcomes came after the signal: they were waiting when it arrived.
            let log = stack.responder.stderr.split(separator: "\n")
            let stopping = try #require(log.firstIndex { $0.hasSuffix("] stopping") })
            #expect(log[stopping...].filter { $0.hasSuffix("] revocation revoked") }.count >= 8)
        }
    }

    /// A backend that answers after 1.5 s holds five revocations when SIGTERM comes; SIGTERM and
    /// SIGINT again during the drain are logged and change nothing: all five are delivered and
    /// counted, the exit is 0, and the log's order is stopping, already stopping (twice), the
    /// five outcomes, stopped.
    @Test func aSecondSignalDuringTheDrainChangesNothing() throws {
        let options = TestStack.Options(backend: ["--delay-ms", "1500"], environment: ["CROCANTE_DRAIN_TIMEOUT_MS": "10000"])
        try withTestStack(options) { stack in
            let tokens = Seal.tokens(5, "drain")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.backendReaches(5))
            stack.responder.send(SIGTERM)
            #expect(Harness.waitUntil { stack.responder.stderr.contains("] stopping") })
            stack.responder.send(SIGTERM)
            stack.responder.send(SIGINT)
            #expect(stack.responder.waitForExit() == 0)
            let log = stack.responder.stderr.split(separator: "\n").map(String.init)
            let kinds = log.compactMap { line -> String? in
                if line.hasSuffix("] stopping") { return "stopping" }
                if line.hasSuffix("] already stopping") { return "already stopping" }
                if line.hasSuffix("] revocation revoked") { return "revoked" }
                if line.hasSuffix("] stopped") { return "stopped" }
                return nil
            }
            #expect(kinds == ["stopping", "already stopping", "already stopping"] + Array(repeating: "revoked", count: 5) + ["stopped"])
            #expect(log.contains { $0.contains("signal=SIGINT") && $0.hasSuffix("] already stopping") })
            #expect(stack.responder.totals == ResponderTotals(requests: 5, queued: 5, revoked: 5))
            #expect(stack.backendBearers.sorted() == tokens.map { "Bearer \($0)" }.sorted())
        }
    }
}
