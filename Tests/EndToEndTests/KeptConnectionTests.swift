import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `CROCANTE_KEEP_CONNECTIONS=on`: a connection nginx asks to keep is kept for its next request
/// only while no other connection waits, and every bound of issue 10 holds on it too.
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

    /// Three requests on one connection, each answered in full; then a second client connects,
    /// and the one worker gives the idle kept connection up for it at once.
    @Test func aKeptConnectionServesRequestsUntilAnotherWaits() throws {
        try withTestStack(.init(environment: Self.keeping)) { stack in
            let kept = try Socket.connectUnix(path: stack.socketPath)
            defer { close(kept) }
            for _ in 0..<3 {
                try Socket.writeAll(kept, FastCGIClient.request(cookie: nil, keepConnection: true))
                let answer = try #require(try FastCGIClient.responseOnKeptConnection(kept))
                #expect(answer.hasPrefix("Status: 200") && answer.hasSuffix(#"{"success":true}"#), "\(answer)")
            }
            let clock = ContinuousClock()
            let started = clock.now
            let other = try FastCGIClient.exchange(unixSocket: stack.socketPath, FastCGIClient.request(cookie: nil))
            let waited = clock.now - started
            #expect(other.hasSuffix(#"{"success":true}"#))
            // Well under the 3 s idle bound: the worker did not sit on the idle connection.
            #expect(waited < .seconds(2), "the second client waited \(waited)")
            #expect(Self.closedByResponder(kept), "the kept connection was closed, not answered")
            let status = try stack.status()
            #expect(status["kept_requests"] == 2 && (status["kept_connections_yielded"] ?? 0) >= 1, "\(status)")
        }
    }

    /// Every worker holds a kept connection when one more arrives: exactly one of them gives its
    /// connection up for it, not every worker that saw it arrive (each would cost nginx a
    /// request sent on a closed connection, and sent again).
    @Test func onePendingConnectionTakesOneKeptConnectionNotAll() throws {
        let environment = Self.keeping.merging(["CROCANTE_WORKERS": "3"]) { $1 }
        try withTestStack(.init(environment: environment)) { stack in
            var kept: [Int32] = []
            defer { kept.forEach { close($0) } }
            for _ in 0..<3 {
                let fd = try Socket.connectUnix(path: stack.socketPath)
                kept.append(fd)
                try Socket.writeAll(fd, FastCGIClient.request(cookie: nil, keepConnection: true))
                #expect(try FastCGIClient.responseOnKeptConnection(fd)?.hasSuffix(#"{"success":true}"#) == true)
            }
            let other = try FastCGIClient.exchange(unixSocket: stack.socketPath, FastCGIClient.request(cookie: nil))
            #expect(other.hasSuffix(#"{"success":true}"#))
            var answered = 0
            for fd in kept {
                guard (try? Socket.writeAll(fd, FastCGIClient.request(cookie: nil, keepConnection: true))) != nil,
                    let answer = try? FastCGIClient.responseOnKeptConnection(fd)
                else { continue }
                if answer.hasSuffix(#"{"success":true}"#) { answered += 1 }
            }
            #expect(answered == 2, "two of the three kept connections still serve")
            let status = try stack.status()
            #expect(status["kept_connections_yielded"] == 1 && status["kept_requests"] == 2, "\(status)")
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
            #expect(try stack.status()["timed_out"] == 1)

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
