import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `CROCANTE_KEEP_CONNECTIONS=on`: a connection nginx asks to keep waits, idle, in the epoll
/// set the workers share; whichever worker is free serves its next request. No idle connection
/// holds a worker, none is closed because another waits, and every bound of issue 10 holds on it.
@Suite(.serialized)
struct KeptConnectionTests {
    static let keeping = ["CROCANTE_KEEP_CONNECTIONS": "on", "CROCANTE_WORKERS": "1", "CROCANTE_KEEPALIVE_IDLE_MS": "3000"]

    /// The upstream with `keepalive` and `fastcgi_keep_conn on`, as nginx.conf.example shows for this mode.
    static let keptSite = [
        ("\nupstream crocante_logout {\n", "\nupstream crocante_logout {\n    keepalive 8;\n"),
        ("fastcgi_keep_conn off;", "fastcgi_keep_conn on;"),
    ]

    /// True when the responder closes `fd` without sending anything more: EOF, or a reset (it
    /// closed with our unread bytes in its buffer).
    static func closedByResponder(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    /// One request on a kept connection, answered in full.
    static func answered(_ fd: Int32) -> Bool {
        guard (try? Socket.writeAll(fd, FastCGIClient.request(cookie: nil, keepConnection: true))) != nil,
            let answer = try? FastCGIClient.responseOnKeptConnection(fd)
        else { return false }
        return answer.hasPrefix("Status: 200") && answer.hasSuffix(#"{"success":true}"#)
    }

    /// With one worker: an idle kept connection does not keep a new client waiting, and is not
    /// closed for it either; two kept connections then take turns on the one worker.
    @Test func anIdleKeptConnectionHoldsNoWorkerAndIsNotClosedForAnother() throws {
        try withTestStack(.init(environment: Self.keeping)) { stack in
            let first = try Socket.connectUnix(path: stack.socketPath)
            defer { close(first) }
            #expect(Self.answered(first))
            let clock = ContinuousClock()
            let started = clock.now
            let other = try FastCGIClient.exchange(unixSocket: stack.socketPath, FastCGIClient.request(cookie: nil))
            let waited = clock.now - started
            #expect(other.hasSuffix(#"{"success":true}"#))
            // Well under the 3 s idle bound: the worker did not sit on the idle connection.
            #expect(waited < .seconds(2), "the second client waited \(waited)")
            #expect(Self.answered(first), "the kept connection still serves")
            let second = try Socket.connectUnix(path: stack.socketPath)
            defer { close(second) }
            var answered = 0
            for _ in 0..<5 {
                if Self.answered(second) { answered += 1 }
                if Self.answered(first) { answered += 1 }
            }
            #expect(answered == 10)
            let status = try stack.status()
            // first: 1 + 5 kept; second: 4 kept (its first request is a new connection's).
            #expect(status["kept_requests"] == 10, "\(status)")
            #expect(status["kept_connections_idle"] == 2 && status["kept_connections_evicted"] == 0, "\(status)")
            #expect(status["kept_connections_expired"] == 0, "\(status)")
        }
    }

    /// Fifty kept connections on two workers, three requests each in turn: all served, none closed.
    @Test func manyMoreKeptConnectionsThanWorkersAreAllServed() throws {
        let environment = Self.keeping.merging(["CROCANTE_WORKERS": "2"]) { $1 }
        try withTestStack(.init(environment: environment)) { stack in
            var kept: [Int32] = []
            defer { kept.forEach { close($0) } }
            for _ in 0..<50 { kept.append(try Socket.connectUnix(path: stack.socketPath)) }
            var answered = 0
            for _ in 0..<3 {
                for fd in kept where Self.answered(fd) { answered += 1 }
            }
            #expect(answered == 150)
            let status = try stack.status()
            #expect(status["kept_requests"] == 100 && status["kept_connections_idle"] == 50, "\(status)")
        }
    }

    /// Out of descriptors with kept connections idle: the oldest idle one is closed to make room,
    /// and the new client is served without the accept back-off.
    @Test func outOfDescriptorsTheOldestIdleConnectionMakesRoom() throws {
        let environment = Self.keeping.merging(["CROCANTE_WORKERS": "2", "CROCANTE_KEEPALIVE_IDLE_MS": "60000"]) { $1 }
        try withTestStack(.init(environment: environment)) { stack in
            var kept: [Int32] = []
            defer { kept.forEach { close($0) } }
            for _ in 0..<10 {
                let fd = try Socket.connectUnix(path: stack.socketPath)
                kept.append(fd)
                #expect(Self.answered(fd))
            }
            let pid = stack.responder.pid
            // The lowest free descriptor number as the soft limit: the next accept finds none (unless
            // the process closes one meanwhile, hence the loop).
            let open = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int($0) })
            let lowestFree = (0...).first { !open.contains($0) }!
            let limited = try Harness.run("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=\(lowestFree):\(lowestFree + 1024)"])
            try #require(limited.status == 0, "\(limited.stderr)")
            var evicted = 0
            for _ in 0..<20 where evicted == 0 {
                let answer = try FastCGIClient.exchange(unixSocket: stack.socketPath, FastCGIClient.request(cookie: nil))
                #expect(answer.hasSuffix(#"{"success":true}"#))
                evicted = try stack.status()["kept_connections_evicted"] ?? 0
            }
            #expect(!stack.responder.stderr.contains("accept failed"), "\(stack.responder.stderr)")
            // Oldest first; a connection answered and closed gives its descriptor back, so a few at most.
            #expect((1...5).contains(try stack.status()["kept_connections_evicted"] ?? 0))
            #expect(Self.closedByResponder(kept[0]))
            #expect(Self.answered(kept[9]), "the newest kept connection still serves")
        }
    }

    /// Without the keep flag (nginx's `fastcgi_keep_conn off`), or with the mode off, the
    /// connection is closed after its answer as before.
    @Test(arguments: [(true, false), (false, true)])
    func connectionsAreClosedUnlessBothSidesKeep(modeOn: Bool, flag: Bool) throws {
        let environment = modeOn ? Self.keeping : ["CROCANTE_KEEP_CONNECTIONS": "off", "CROCANTE_WORKERS": "1"]
        try withTestStack(.init(environment: environment)) { stack in
            let fd = try Socket.connectUnix(path: stack.socketPath)
            defer { close(fd) }
            try Socket.writeAll(fd, FastCGIClient.request(cookie: nil, keepConnection: flag))
            #expect(try FastCGIClient.responseOnKeptConnection(fd)?.hasSuffix(#"{"success":true}"#) == true)
            #expect(Self.closedByResponder(fd))
        }
    }

    /// The bounds of a fresh connection hold on a kept one: a next request dripped past the
    /// request timeout is closed, an idle one past the idle bound is closed, and a stop
    /// closes kept connections at once.
    @Test func theRequestDeadlineTheIdleBoundAndShutdownApplyToKeptConnections() throws {
        let environment = Self.keeping.merging(["CROCANTE_REQUEST_TIMEOUT_MS": "300", "CROCANTE_KEEPALIVE_IDLE_MS": "500"]) { $1 }
        try withTestStack(.init(environment: environment)) { stack in
            let clock = ContinuousClock()
            // Dripped: half a request, then nothing.
            let dripped = try Socket.connectUnix(path: stack.socketPath)
            defer { close(dripped) }
            try Socket.writeAll(dripped, FastCGIClient.request(cookie: nil, keepConnection: true))
            #expect(try FastCGIClient.responseOnKeptConnection(dripped) != nil)
            let next = FastCGIClient.request(cookie: nil, keepConnection: true)
            try Socket.writeAll(dripped, Array(next.prefix(20)))
            var started = clock.now
            #expect(Self.closedByResponder(dripped))
            var held = clock.now - started
            #expect(held >= .milliseconds(250) && held < .seconds(3), "a dripping kept connection was held \(held)")

            // Idle: closed after the idle bound.
            let idle = try Socket.connectUnix(path: stack.socketPath)
            defer { close(idle) }
            try Socket.writeAll(idle, FastCGIClient.request(cookie: nil, keepConnection: true))
            #expect(try FastCGIClient.responseOnKeptConnection(idle) != nil)
            started = clock.now
            #expect(Self.closedByResponder(idle))
            held = clock.now - started
            #expect(held >= .milliseconds(400) && held < .seconds(3), "an idle kept connection was held \(held)")
            let status = try stack.status()
            #expect(status["timed_out"] == 1 && status["kept_connections_expired"] == 1, "\(status)")

            // Shutdown: a kept idle connection does not hold the stop up.
            let kept = try Socket.connectUnix(path: stack.socketPath)
            defer { close(kept) }
            try Socket.writeAll(kept, FastCGIClient.request(cookie: nil, keepConnection: true))
            #expect(try FastCGIClient.responseOnKeptConnection(kept) != nil)
            started = clock.now
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(clock.now - started < .seconds(3))
            #expect(Self.closedByResponder(kept))
        }
    }

    /// Through nginx keeping 32 connections for 2 workers, under 48 clients: every request is
    /// answered 200 on its first try. nginx logs each request it sent on a connection the
    /// responder had closed (and sent again): none here.
    @Test func throughNginxNoRequestIsSentTwice() throws {
        let environment = Self.keeping.merging(["CROCANTE_WORKERS": "2"]) { $1 }
        let site = Self.keptSite.map { ($0.0, $0.1.replacingOccurrences(of: "keepalive 8;", with: "keepalive 32;")) }
        try withTestStack(.init(environment: environment, site: site)) { stack in
            let load = LoadClient(port: stack.nginxPort, cookie: nil)
            load.start(connections: 48)
            #expect(Harness.waitUntil { load.current.total >= 3000 })
            let tally = load.stop()
            #expect(tally.statuses.keys.sorted() == [200] && tally.socketErrors == 0, "\(tally)")
            let upstreamErrors = stack.nginxErrorLog.split(separator: "\n").filter { $0.contains("upstream") }
            #expect(upstreamErrors.isEmpty, "\(upstreamErrors.prefix(5))")
            let status = try stack.status()
            #expect((status["kept_requests"] ?? 0) * 2 > status["accepted_requests"] ?? 0, "most requests reuse a connection: \(status)")
            #expect(status["kept_connections_evicted"] == 0 && status["kept_connections_expired"] == 0, "\(status)")
        }
    }

    /// Through nginx with the upstream kept: logouts over kept connections, each revoked once.
    @Test func logoutsThroughNginxReuseConnections() throws {
        let environment = Self.keeping.merging(["CROCANTE_WORKERS": "4"]) { $1 }
        try withTestStack(.init(environment: environment, site: Self.keptSite)) { stack in
            let tokens = Seal.tokens(20, "kept")
            for cookie in try Seal.sessions(tokens) {
                let answer = try stack.logout(cookie)
                #expect(answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            }
            #expect(stack.waitForDelivery(of: tokens).isEmpty)
            let status = try stack.status()
            #expect((status["kept_requests"] ?? 0) >= 15, "\(status)")
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0 && stopped.totals?.revoked == tokens.count)
        }
    }
}
