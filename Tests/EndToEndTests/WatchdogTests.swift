import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The watchdog as systemd sees it, without systemd: `WATCHDOG_USEC` set, the datagrams on the
/// responder's notify socket counted. Pings while the workers make progress; none once every
/// worker is wedged (the test-only `CROCANTE_TEST_WEDGE_PATH`). Tests/RealSystemd shows systemd
/// acting on it.
@Suite struct WatchdogTests {
    /// A 400 ms interval (a look every 100 ms) and a 100 ms request deadline: a worker may then be
    /// silent for 3.1 s before the pings stop.
    static let environment = [
        "WATCHDOG_USEC": "400000", "CROCANTE_REQUEST_TIMEOUT_MS": "100", "CROCANTE_WORKERS": "2",
        "CROCANTE_TEST_WEDGE_PATH": "/crocante-test/wedge",
    ]

    /// `WATCHDOG=1` datagrams received during `duration`.
    static func pings(from responder: Responder, during duration: Duration) -> Int {
        let end = ContinuousClock.now + duration
        var count = 0
        while ContinuousClock.now < end {
            if responder.nextNotification(timeout: .milliseconds(50)) == "WATCHDOG=1" { count += 1 }
        }
        return count
    }

    @Test func pingsWhileTheWorkersServeAndStopsWhenTheyAreWedged() throws {
        try withTestStack(.init(environment: Self.environment)) { stack in
            // Healthy and idle: a ping every 100 ms or so (at least a few, whatever the load).
            #expect(Self.pings(from: stack.responder, during: .seconds(1)) >= 3)
            // Healthy and serving.
            #expect(try stack.logout(nil).status == 200)
            #expect(Self.pings(from: stack.responder, during: .milliseconds(500)) >= 1)

            let answer = try FastCGIClient.exchange(
                unixSocket: stack.socketPath, FastCGIClient.request(method: "GET", path: "/crocante-test/wedge", cookie: nil))
            #expect(answer.hasPrefix("Status: 200"))
            // The allowance (3.1 s) runs out, then silence.
            _ = Self.pings(from: stack.responder, during: .seconds(5))
            #expect(Self.pings(from: stack.responder, during: .seconds(2)) == 0)
            #expect(stack.responder.stderr.contains("workers show no progress"))
            // Wedged workers never leave: only SIGKILL ends it (systemd's SIGABRT does the same).
            stack.responder.send(SIGKILL)
            _ = stack.responder.waitForExit()
        }
    }

    @Test(arguments: [["WATCHDOG_PID": "1"], ["WATCHDOG_USEC": "0"], ["WATCHDOG_USEC": ""]])
    func noPingsWhenTheWatchdogIsNotForThisProcess(_ overrides: [String: String]) throws {
        try withTestStack(.init(environment: Self.environment.merging(overrides) { $1 })) { stack in
            #expect(Self.pings(from: stack.responder, during: .seconds(1)) == 0)
        }
    }

    @Test func withoutTheTestSettingTheWedgePathIsNotFound() throws {
        try withTestStack(.init(environment: ["WATCHDOG_USEC": "400000"])) { stack in
            let answer = try FastCGIClient.exchange(
                unixSocket: stack.socketPath, FastCGIClient.request(method: "GET", path: "/crocante-test/wedge", cookie: nil))
            #expect(answer.hasPrefix("Status: 404"))
            #expect(Self.pings(from: stack.responder, during: .seconds(1)) >= 3)
        }
    }
}
