import LogoutCore
import Testing

@testable import Revocation

/// SplitMix64: a seeded generator, so jitter is reproducible.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

typealias Machine = RevocationQueue.StateMachine

/// Drives a state machine with a hand-moved clock and a fixed key, and keeps what it asked for.
struct Driver {
    var machine: Machine
    var now = RevocationInstant(monotonic: 1_000_000, wall: 1_700_000_000_000)
    var random = SeededRandom(state: 42)
    let keyer = TokenKeyer(keyBytes: [UInt8](repeating: 7, count: 16))

    /// - Parameter parks: the queue has a journal, so tokens past `capacity` park in it.
    init(parks: Bool = false, _ configure: (inout RevocationSettings) -> Void = { _ in }) {
        var settings = RevocationSettings()
        configure(&settings)
        machine = Machine(settings: settings, parksInJournal: parks)
    }

    mutating func advance(ms: Int64) {
        now.monotonic += ms
        now.wall += ms
    }

    func key(_ token: AccessToken) -> TokenKey { keyer.key(for: token) }

    /// Both halves of a submit, as the queue does them; nil when not accepted.
    mutating func submit(
        _ token: AccessToken, receipt: JournalReceipt? = nil, loggedOutAt: UnixMilliseconds? = nil, expiresAt: UnixMilliseconds? = nil
    ) -> (Machine.SubmitVerdict, [Machine.Action]) {
        let verdict = machine.submit(key(token), token: token, loggedOutAt: loggedOutAt ?? now.wall, now: now)
        guard verdict == .accepted else { return (verdict, []) }
        return (verdict, machine.journaled(key(token), receipt: receipt, expiresAt: expiresAt, now: now))
    }

    mutating func finish(_ token: AccessToken, _ outcome: RevocationOutcome, latency: Duration = .milliseconds(3)) -> [Machine.Action] {
        machine.finished(key(token), outcome: outcome, latency: latency, now: now, random: &random)
    }

    mutating func retryDue(_ token: AccessToken) -> [Machine.Action] {
        machine.retryDue(key(token), now: now)
    }

    var counts: RevocationQueue.Counts { machine.snapshot(now: now) }
}

extension [Machine.Action] {
    var calls: [AccessToken] {
        compactMap { if case .call(_, let token, _) = $0 { return token } else { return nil } }
    }
    var completed: [JournalReceipt] {
        flatMap { if case .complete(let receipts) = $0 { return receipts } else { return [] } }
    }
    var readBacks: [Machine.ParkedRecord] {
        flatMap { if case .readBack(let records) = $0 { return records } else { return [] } }
    }
    var retryDelays: [Int64] {
        compactMap { if case .scheduleRetry(_, let ms) = $0 { return ms } else { return nil } }
    }
    var logs: [Machine.LogEvent] {
        compactMap { if case .log(let event) = $0 { return event } else { return nil } }
    }
}

func receipt(_ record: UInt64) -> JournalReceipt { JournalReceipt(segment: 1, record: record) }

@Suite struct RevocationStateMachineTests {
    let a = token("tok-A-VALUE-1")
    let b = token("tok-B-VALUE-2")
    let c = token("tok-C-VALUE-3")

    @Test func aPendingTokenIsADuplicateInEveryPhase() {
        var driver = Driver { $0.concurrency = 1 }
        #expect(driver.submit(a).1.calls == [a])
        #expect(driver.submit(a).0 == .duplicate)  // in flight
        _ = driver.submit(b)
        #expect(driver.submit(b).0 == .duplicate)  // waiting
        #expect(driver.finish(a, .failed(.timeout)).calls == [b])
        #expect(driver.submit(a).0 == .duplicate)  // retrying
        #expect(driver.counts.duplicate == 3)
        #expect(driver.counts.queued == 2)
    }

    @Test func aFinishedTokenIsRememberedForTheDedupWindowOnly() {
        var driver = Driver { $0.dedupWindow = .seconds(300) }
        _ = driver.submit(a)
        _ = driver.finish(a, .revoked(status: 204))
        driver.advance(ms: 299_999)
        #expect(driver.submit(a).0 == .duplicate)
        driver.advance(ms: 1)
        #expect(driver.submit(a).1.calls == [a])
        #expect(driver.counts.queued == 2)
        #expect(driver.counts.duplicate == 1)
    }

    @Test func theDedupTableForgetsTheOldestFinishedFirst() {
        var driver = Driver { $0.dedupEntries = 2 }
        for token in [a, b, c] {
            _ = driver.submit(token)
            _ = driver.finish(token, .rejected(status: 401))
            driver.advance(ms: 1)
        }
        #expect(driver.machine.entries.count == 2)
        #expect(driver.submit(b).0 == .duplicate)
        #expect(driver.submit(c).0 == .duplicate)
        #expect(driver.submit(a).0 == .accepted)
    }

    @Test func theTableHoldsKeyedHashesNeverTokens() {
        let driver = Driver()
        let other = TokenKeyer(keyBytes: [UInt8](repeating: 8, count: 16))
        #expect(driver.key(a) == driver.key(token("tok-A-VALUE-1")))
        #expect(driver.key(a) != driver.key(b))
        #expect(driver.key(a) != other.key(for: a))  // a different process, a different key
    }

    @Test func pastCapacityNewTokensAreDroppedAndLoggedOnceASecond() {
        var driver = Driver {
            $0.capacity = 2
            $0.concurrency = 1
        }
        let sent = tokens(6)
        for token in sent.prefix(3) { #expect(driver.submit(token).0 == .accepted) }
        #expect(driver.submit(sent[3]).0 == .dropped(logCount: 1))
        #expect(driver.submit(sent[4]).0 == .dropped(logCount: nil))
        driver.advance(ms: 1_000)
        #expect(driver.submit(sent[5]).0 == .dropped(logCount: 2))
        // A duplicate of a pending token is not a drop.
        #expect(driver.submit(sent[0]).0 == .duplicate)
        let counts = driver.counts
        #expect(counts.dropped == 3)
        #expect(counts.inFlight == 1)
        #expect(counts.waiting == 2)
        #expect(counts.pending == 2)
    }

    static let finalStatuses: [(Int, Bool)] = [
        (200, false), (204, false), (400, false), (401, false), (403, false), (404, false), (410, false),
        (408, true), (425, true), (429, true), (500, true), (502, true), (503, true), (504, true), (302, true),
    ]

    @Test(arguments: finalStatuses)
    func retriedOrFinalByStatus(status: Int, retried: Bool) {
        var driver = Driver()
        _ = driver.submit(a, receipt: receipt(1))
        let actions = driver.finish(a, RevocationOutcome(status: status))
        #expect(actions.retryDelays.count == (retried ? 1 : 0))
        #expect(actions.completed == (retried ? [] : [receipt(1)]))
        #expect(driver.counts.retried == (retried ? 1 : 0))
        #expect(driver.counts.pending == (retried ? 1 : 0))
    }

    @Test func timeoutsAndConnectionErrorsAreRetriedUntilRevoked() {
        var driver = Driver()
        _ = driver.submit(a, receipt: receipt(9))
        #expect(driver.finish(a, .failed(.timeout)).retryDelays.count == 1)
        driver.advance(ms: 60_000)
        #expect(driver.retryDue(a).calls == [a])
        #expect(driver.finish(a, .failed(.connection("refused"))).retryDelays.count == 1)
        driver.advance(ms: 60_000)
        #expect(driver.retryDue(a).calls == [a])
        #expect(driver.finish(a, .revoked(status: 200)).completed == [receipt(9)])
        let counts = driver.counts
        #expect(counts.failed == 2)
        #expect(counts.retried == 2)
        #expect(counts.revoked == 1)
        #expect(counts.pending == 0)
        #expect(counts.latency.count == 3)
    }

    @Test(arguments: 1...12)
    func backoffIsCappedExponentialWithFullJitter(attempt: Int) {
        let driver = Driver {
            $0.retryBase = .milliseconds(100)
            $0.retryMax = .seconds(30)
        }
        let ceiling: Int64 = min(30_000, Int64(100) << Int64(attempt - 1))
        var random = SeededRandom(state: UInt64(attempt))
        let delays = (0..<500).map { _ in driver.machine.retryDelay(attempt: attempt, retryAfter: nil, random: &random) }
        #expect(delays.allSatisfy { (0...ceiling).contains($0) })
        // Full jitter spreads over the whole range, not around the ceiling.
        #expect(delays.contains { $0 < ceiling / 4 })
        #expect(delays.contains { $0 > ceiling * 3 / 4 })
    }

    @Test func backoffNeverOverflowsAfterManyAttempts() {
        let driver = Driver()
        var random = SeededRandom(state: 1)
        for attempt in [30, 63, 64, 1_000, Int.max] {
            #expect((0...60_000).contains(driver.machine.retryDelay(attempt: attempt, retryAfter: nil, random: &random)))
        }
    }

    @Test func retryAfterReplacesTheBackoffClampedToTheCap() {
        var driver = Driver { $0.retryMax = .seconds(60) }
        _ = driver.submit(a)
        _ = driver.submit(b)
        #expect(driver.finish(a, .failed(.status(503), retryAfter: 7_000)).retryDelays == [7_000])
        #expect(driver.finish(b, .failed(.status(429), retryAfter: 3_600_000)).retryDelays == [60_000])
    }

    static let retryAfterValues: [(String, Int64?)] = [
        ("120", 120_000),
        ("0", 0),
        (" 5 ", 5_000),
        // 1_700_000_000_000 ms is Tue, 14 Nov 2023 22:13:20 GMT.
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30_000),
        ("Tuesday, 14-Nov-23 22:14:20 GMT", 60_000),
        ("Tue Nov 14 22:13:21 2023", 1_000),
        ("Tue Nov  1 00:00:00 2023", 0),  // in the past: no wait
        ("Mon, 13 Nov 2023 00:00:00 GMT", 0),
        ("-5", nil),
        ("1.5", nil),
        ("soon", nil),
        ("", nil),
        ("Tue, 14 Nov 2023 25:00:00 GMT", nil),
        ("Tue, 14 Foo 2023 22:13:50 GMT", nil),
    ]

    @Test(arguments: retryAfterValues)
    func parsesRetryAfterInBothForms(value: String, expected: Int64?) {
        #expect(RetryAfter.parse(value, now: 1_700_000_000_000) == expected)
    }

    @Test func aHugeDeltaSaturatesAndIsThenClamped() throws {
        let huge = try #require(RetryAfter.parse("99999999999999999999", now: 0))
        var random = SeededRandom(state: 1)
        #expect(Driver().machine.retryDelay(attempt: 1, retryAfter: huge, random: &random) == 60_000)
    }

    @Test func whenBothLanesHaveWorkTheyTakeTurns() {
        var driver = Driver { $0.concurrency = 1 }
        let retries = tokens(3, prefix: "retry")
        let fresh = tokens(3, prefix: "fresh")
        // Put three tokens in the retry lane: each fails once and its timer fires.
        for token in retries {
            _ = driver.submit(token)
            _ = driver.finish(token, .failed(.timeout))
        }
        // The slot is free: the first fresh token goes at once, the others wait.
        var order = fresh.flatMap { driver.submit($0).1.calls }
        #expect(order == [fresh[0]])
        driver.advance(ms: 120_000)
        for token in retries { order += driver.retryDue(token).calls }
        #expect(order == [fresh[0]])
        for _ in 0..<5 {
            let running = order.last!
            order += driver.finish(running, .revoked(status: 204)).calls
        }
        #expect(order == [fresh[0], retries[0], fresh[1], retries[1], fresh[2], retries[2]])
    }

    @Test func aFreshFloodDoesNotStarveARetry() {
        var driver = Driver { $0.concurrency = 1 }
        let old = token("old-VALUE")
        _ = driver.submit(old)
        _ = driver.finish(old, .failed(.timeout))
        let flood = tokens(50, prefix: "flood")
        var running = flood[0]
        _ = driver.submit(running)
        for token in flood.dropFirst() { _ = driver.submit(token) }
        driver.advance(ms: 120_000)
        #expect(driver.retryDue(old).calls.isEmpty)  // the slot is busy
        let next = driver.finish(running, .revoked(status: 204)).calls
        #expect(next == [old])
        running = old
        #expect(driver.finish(running, .revoked(status: 204)).calls == [flood[1]])
    }

    @Test func noAttemptAfterTheJWTExpires() {
        var driver = Driver { $0.retryMax = .seconds(60) }
        let expiresAt = driver.now.wall + 5_000
        _ = driver.submit(a, receipt: receipt(3), expiresAt: expiresAt)
        // The backend asks for 10 s: the token is dead by then.
        let actions = driver.finish(a, .failed(.status(503), retryAfter: 10_000))
        #expect(actions.retryDelays.isEmpty)
        #expect(actions.completed == [receipt(3)])
        #expect(actions.logs == [.outageStarted(a, .status(503)), .expired(a, attempts: 1, byExp: true)])
        #expect(driver.counts.expired == 1)
        #expect(driver.counts.retried == 0)
    }

    @Test func aTokenExpiredWhileWaitingIsNeverCalled() {
        var driver = Driver { $0.concurrency = 1 }
        _ = driver.submit(a)
        _ = driver.submit(b, receipt: receipt(4), expiresAt: driver.now.wall + 1_000)
        driver.advance(ms: 1_000)
        let actions = driver.finish(a, .revoked(status: 200))
        #expect(actions.calls.isEmpty)
        #expect(actions.completed == [receipt(4)])
        #expect(driver.counts.expired == 1)
    }

    @Test func withoutExpRetryingStopsAtTheMaximumAgeSinceLogout() {
        var driver = Driver {
            $0.maxAge = .seconds(86_400)
            $0.retryMax = .seconds(60)
        }
        // Logged out almost a day ago (an adopted record, say): the next wait would pass the bound.
        _ = driver.submit(a, loggedOutAt: driver.now.wall - 86_400_000 + 30_000)
        let actions = driver.finish(a, .failed(.timeout, retryAfter: 45_000))
        #expect(actions.logs.contains(.expired(a, attempts: 1, byExp: false)))
        #expect(driver.counts.expired == 1)

        // One logged out now keeps being retried.
        _ = driver.submit(b)
        #expect(driver.finish(b, .failed(.timeout, retryAfter: 45_000)).retryDelays == [45_000])
    }

    @Test func readsTheExpOfAJWTWithoutCheckingItsSignature() {
        func jwt(_ payload: String) -> AccessToken {
            let encoded = Array(payload.utf8).base64URL
            return token("eyJhbGciOiJIUzI1NiJ9.\(encoded).c2lnbmF0dXJl")
        }
        #expect(TokenExpiry.of(jwt(#"{"sub":"u1","exp":1700000000}"#)) == 1_700_000_000_000)
        #expect(TokenExpiry.of(jwt(#"{"exp":1700000000.5,"nested":{"exp":1}}"#)) == 1_700_000_000_500)
        #expect(TokenExpiry.of(jwt(#"{"exp":"1700000000"}"#)) == nil)
        #expect(TokenExpiry.of(jwt(#"{"exp":true}"#)) == nil)
        #expect(TokenExpiry.of(jwt(#"{"sub":"u1"}"#)) == nil)
        #expect(TokenExpiry.of(jwt(#"[1,2]"#)) == nil)
        #expect(TokenExpiry.of(token("opaque-token-VALUE")) == nil)
        #expect(TokenExpiry.of(token("a.b.c.d.e")) == nil)
        #expect(TokenExpiry.of(token("a.%%%.c")) == nil)
    }

    @Test func adoptedRecordsAreCalledAndDuplicatesNeverLost() {
        var driver = Driver { $0.concurrency = 1 }
        _ = driver.submit(a, receipt: receipt(1))  // in flight
        _ = driver.submit(b, receipt: receipt(2))
        _ = driver.finish(a, .revoked(status: 204))  // a finished; b in flight
        let adopted = [a, b, c].enumerated().map { index, token in
            (key: driver.key(token), revocation: AdoptedRevocation(token: token, loggedOutAt: driver.now.wall - 5_000, receipt: receipt(UInt64(10 + index))), expiresAt: UnixMilliseconds?.none)
        }
        let actions = driver.machine.adopt(adopted, now: driver.now)
        // a finished within the window: its adopted record is done at once.
        #expect(actions.completed == [receipt(10)])
        #expect(actions.calls.isEmpty)  // b holds the one slot
        #expect(driver.counts.adopted == 3)
        #expect(driver.counts.retrying == 1)  // c, in the retry lane
        // b's adopted duplicate is completed with b.
        let next = driver.finish(b, .revoked(status: 204))
        #expect(next.completed == [receipt(2), receipt(11)])
        #expect(next.calls == [c])
        #expect(driver.finish(c, .revoked(status: 204)).completed == [receipt(12)])
        #expect(driver.counts.oldestPendingAgeSeconds == 0)
    }

    @Test func adoptedRecordsAreNotBoundedByCapacity() {
        var driver = Driver {
            $0.capacity = 1
            $0.concurrency = 1
        }
        let adopted = tokens(5, prefix: "adopted").enumerated().map { index, token in
            (key: driver.key(token), revocation: AdoptedRevocation(token: token, loggedOutAt: driver.now.wall, receipt: receipt(UInt64(index))), expiresAt: UnixMilliseconds?.none)
        }
        #expect(driver.machine.adopt(adopted, now: driver.now).calls.count == 1)
        #expect(driver.counts.pending == 4)
        #expect(driver.counts.dropped == 0)
    }

    @Test func drainWithAJournalHandsOverWhatHasARecord() {
        var driver = Driver { $0.concurrency = 1 }
        _ = driver.submit(a, receipt: receipt(1))  // in flight
        _ = driver.submit(b, receipt: receipt(2))  // waiting
        _ = driver.submit(c)  // the journal refused it: memory only
        driver.machine.beginDrain()
        #expect(driver.submit(token("late")).0 == .dropped(logCount: 1))
        #expect(!driver.machine.isIdle(deadline: driver.now.monotonic + 10_000))
        let result = driver.machine.endDrain(journal: true)
        #expect(result.handedOver == 2)
        #expect(result.lost == 1)
        // A late outcome of the written-off call changes nothing.
        #expect(driver.finish(a, .revoked(status: 204)).isEmpty)
        let counts = driver.counts
        #expect(counts.handedOver == 2)
        #expect(counts.lost == 1)
        #expect(counts.revoked == 0)
        #expect(counts.inFlight == 0)
        #expect(counts.pending == 0)
    }

    @Test func drainWithoutAJournalCountsEverythingLost() {
        var driver = Driver { $0.concurrency = 1 }
        _ = driver.submit(a)
        _ = driver.submit(b)
        driver.machine.beginDrain()
        let result = driver.machine.endDrain(journal: false)
        #expect(result.handedOver == 0)
        #expect(result.lost == 2)
        #expect(driver.counts.lost == 2)
    }

    @Test func drainDoesNotAwaitRetriesDueAfterTheDeadline() {
        var driver = Driver()
        _ = driver.submit(a)
        let delay = driver.finish(a, .failed(.status(503), retryAfter: 30_000)).retryDelays.first!
        driver.machine.beginDrain()
        #expect(driver.machine.isIdle(deadline: driver.now.monotonic + delay))
        #expect(!driver.machine.isIdle(deadline: driver.now.monotonic + delay + 1))
    }

    @Test func anOutageIsLoggedWhenItStartsAndEndsNotPerAttempt() {
        var driver = Driver()
        let sent = tokens(3)
        for token in sent { _ = driver.submit(token) }
        var logs: [Machine.LogEvent] = []
        for token in sent { logs += driver.finish(token, .failed(.status(503))).logs }
        #expect(logs.filter { if case .outageStarted = $0 { true } else { false } }.count == 1)
        #expect(logs.filter { if case .attemptFailed = $0 { true } else { false } }.count == 3)
        driver.advance(ms: 61_000)
        _ = driver.retryDue(sent[0])
        let ended = driver.finish(sent[0], .revoked(status: 204)).logs
        #expect(ended == [.outageEnded(sent[0], failedAttempts: 3, milliseconds: 61_000), .revoked(sent[0], status: 204)])
    }

    @Test func countsTheOldestPendingAgeAndLatency() {
        var driver = Driver()
        _ = driver.submit(a, loggedOutAt: driver.now.wall - 90_000)
        _ = driver.submit(b)
        #expect(driver.counts.oldestPendingAgeSeconds == 90)
        _ = driver.finish(a, .revoked(status: 204), latency: .milliseconds(4))
        _ = driver.finish(b, .revoked(status: 204), latency: .milliseconds(700))
        #expect(driver.counts.oldestPendingAgeSeconds == 0)
        let latency = driver.counts.latency
        #expect(latency.count == 2)
        #expect(latency.cumulative == [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2])
        #expect(abs(latency.sum - 0.704) < 1e-9)
    }
}

extension [UInt8] {
    /// Base64url without padding, for building test JWTs.
    var base64URL: String {
        let alphabet = [Character]("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var out = ""
        var index = 0
        while index < count {
            let chunk = self[index..<Swift.min(index + 3, count)]
            var value = 0
            for (offset, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
            for position in 0...chunk.count { out.append(alphabet[(value >> (18 - 6 * position)) & 63]) }
            index += 3
        }
        return out
    }
}
