import FastCGI
import Testing

@Suite struct WatchdogPolicyTests {
    /// One step: the time (seconds since creation), every worker's counter, and whether to ping.
    struct Step: Sendable, CustomTestStringConvertible {
        let at: Int
        let progress: [UInt64]
        let ping: Bool
        var testDescription: String { "t=\(at)s \(progress) ping=\(ping)" }
    }

    static let allowance = Duration.seconds(5)

    @Test(arguments: [
        // Idle workers bump their counters every accept poll: always healthy.
        ("idle workers", [Step(at: 1, progress: [1, 1], ping: true), Step(at: 6, progress: [5, 9], ping: true),
                          Step(at: 11, progress: [9, 20], ping: true)]),
        // Nothing moves from the start: healthy until the allowance has passed, then not.
        ("wedged from the start", [Step(at: 2, progress: [0, 0], ping: true), Step(at: 5, progress: [0, 0], ping: true),
                                   Step(at: 6, progress: [0, 0], ping: false)]),
        // One worker stuck is enough to stop pinging.
        ("one worker stuck", [Step(at: 1, progress: [1, 1], ping: true), Step(at: 4, progress: [2, 1], ping: true),
                              Step(at: 7, progress: [3, 1], ping: false), Step(at: 9, progress: [4, 1], ping: false)]),
        // A worker busy with one slow connection for less than the allowance stays healthy.
        ("slow connection", [Step(at: 1, progress: [1, 1], ping: true), Step(at: 5, progress: [2, 1], ping: true),
                             Step(at: 6, progress: [3, 2], ping: true)]),
        // A stuck worker that moves again brings the pings back.
        ("recovers", [Step(at: 7, progress: [0, 1], ping: false), Step(at: 8, progress: [1, 2], ping: true)]),
    ] as [(String, [Step])])
    func decides(_ name: String, steps: [Step]) {
        var policy = WatchdogPolicy(workers: 2, allowance: Self.allowance, now: .zero)
        for step in steps {
            let ping = policy.check(progress: step.progress, now: .seconds(step.at))
            #expect(ping == step.ping, "\(name): \(step.testDescription)")
        }
    }

    @Test func namesTheSilentWorkers() {
        var policy = WatchdogPolicy(workers: 3, allowance: Self.allowance, now: .zero)
        _ = policy.check(progress: [1, 0, 1], now: .seconds(4))
        let ping = policy.check(progress: [1, 0, 2], now: .seconds(10))
        #expect(!ping)
        #expect(policy.silentWorkers(now: .seconds(10)) == [0, 1])
    }

    @Test(arguments: [
        (["WATCHDOG_USEC": "10000000"], Duration?.some(.seconds(10))),
        (["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42"], .some(.seconds(10))),
        (["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": ""], .some(.seconds(10))),
        (["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "43"], nil),
        (["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "x"], nil),
        (["WATCHDOG_USEC": "0"], nil),
        (["WATCHDOG_USEC": "-5"], nil),
        (["WATCHDOG_USEC": "10s"], nil),
        (["WATCHDOG_USEC": "18446744073709551615"], nil),
        ([:], nil),
    ] as [([String: String], Duration?)])
    func readsTheIntervalAsSystemdSetsIt(environment: [String: String], expected: Duration?) {
        #expect(WatchdogPolicy.interval(environment: environment, pid: 42) == expected)
    }
}

@Suite struct WorkerHeartbeatsTests {
    @Test func startsAtZeroAndParksOnRequest() {
        let heartbeats = WorkerHeartbeats(workers: 3)
        #expect(heartbeats.snapshot() == [0, 0, 0])
        heartbeats.parkAll()
        #expect(heartbeats.count == 3)
    }
}
