import LogoutCore
import Testing

@testable import Revocation

/// Past `capacity`, with a journal, tokens park in it (their token not in memory) and are read
/// back oldest first as room frees; nothing is dropped unless the journal refuses too.
@Suite struct RevocationParkingTests {
    let sent = tokens(6, prefix: "park")

    /// Capacity 2, one call at a time: sent[0] in flight, sent[1...2] waiting, the rest parked.
    func fullDriver() -> (Driver, [Machine.Action]) {
        var driver = Driver(parks: true) {
            $0.capacity = 2
            $0.concurrency = 1
        }
        var actions: [Machine.Action] = []
        for (index, token) in sent.enumerated() {
            let (verdict, more) = driver.submit(token, receipt: receipt(UInt64(index)))
            #expect(verdict == .accepted)
            actions += more
        }
        return (driver, actions)
    }

    @Test func pastCapacityTokensParkWithoutTheirTokenInMemory() {
        let (driver, actions) = fullDriver()
        #expect(actions.calls == [sent[0]])
        #expect(actions.readBacks.isEmpty)
        let counts = driver.counts
        #expect(counts.queued == 6 && counts.parked == 3 && counts.parkedNow == 3)
        #expect(counts.dropped == 0 && counts.pending == 2 && counts.inFlight == 1)
        for token in sent[3...] {
            #expect(driver.machine.entries[driver.key(token)]?.token == nil)
        }
        // The oldest age looks at memory and the first parked, not at every parked entry.
        var later = driver
        later.advance(ms: 5_000)
        #expect(later.counts.oldestPendingAgeSeconds == 5)
        // A parked token is still known: a replay of it is a duplicate, not a second record.
        var replaying = driver
        #expect(replaying.submit(sent[4]).0 == .duplicate)
    }

    @Test func parkedTokensAreReadBackOldestFirstAsRoomFrees() {
        var (driver, _) = fullDriver()
        let actions = driver.finish(sent[0], .revoked(status: 204))
        #expect(actions.calls == [sent[1]])
        #expect(actions.readBacks == [Machine.ParkedRecord(key: driver.key(sent[3]), receipt: receipt(3))])
        // A new logout while older ones are parked parks behind them.
        let late = token("late-park")
        #expect(driver.submit(late, receipt: receipt(9)).0 == .accepted)
        #expect(driver.counts.parkedNow == 4)  // sent[3] being read; sent[4], sent[5], late parked
        let back = driver.machine.unparked(actions.readBacks, tokens: [sent[3]], now: driver.now)
        #expect(back.calls.isEmpty && back.readBacks.isEmpty)  // the one slot is busy, memory full
        // Run to the end: finish each call, read back whatever is asked for.
        let all = sent + [late]
        var called: [AccessToken] = [sent[0], sent[1]]
        var inFlight: AccessToken? = sent[1]
        var next: [Machine.Action] = []
        while true {
            if let token = next.calls.first {
                called.append(token)
                inFlight = token
            }
            let reads = next.readBacks
            if !reads.isEmpty {
                let values = reads.map { record in all.first { driver.key($0) == record.key } }
                next = driver.machine.unparked(reads, tokens: values, now: driver.now)
                continue
            }
            guard let token = inFlight else { break }
            inFlight = nil
            next = driver.finish(token, .revoked(status: 204))
        }
        #expect(Set(called) == Set(sent + [late]))
        let counts = driver.counts
        #expect(counts.revoked == 7 && counts.parkedNow == 0 && counts.pending == 0 && counts.dropped == 0)
    }

    @Test func whenTheJournalRefusesTooTheTokenIsDroppedAndLogged() {
        var driver = Driver(parks: true) {
            $0.capacity = 1
            $0.concurrency = 1
        }
        _ = driver.submit(sent[0], receipt: receipt(0))
        _ = driver.submit(sent[1], receipt: receipt(1))
        let (verdict, actions) = driver.submit(sent[2], receipt: nil)
        #expect(verdict == .accepted)
        #expect(actions.logs == [.dropped(count: 1)])
        let counts = driver.counts
        #expect(counts.dropped == 1 && counts.queued == 2 && counts.parked == 0)
        #expect(driver.machine.entries[driver.key(sent[2])] == nil)
    }

    @Test func withoutAJournalTokensPastCapacityAreStillDropped() {
        var driver = Driver(parks: false) {
            $0.capacity = 1
            $0.concurrency = 1
        }
        _ = driver.submit(sent[0])
        _ = driver.submit(sent[1])
        #expect(driver.submit(sent[2]).0 == .dropped(logCount: 1))
        #expect(driver.counts.parked == 0)
    }

    @Test func aRecordThatCannotBeReadBackIsCountedLostAndLeftInTheJournal() {
        var (driver, _) = fullDriver()
        let reads = driver.finish(sent[0], .revoked(status: 204)).readBacks
        let actions = driver.machine.unparked(reads, tokens: [nil], now: driver.now)
        #expect(actions.logs == [.readBackFailed(count: 1)])
        #expect(actions.completed.isEmpty)  // still pending in the journal: a successor adopts it
        #expect(driver.counts.lost == 1)
        #expect(driver.machine.entries[driver.key(sent[3])] == nil)
    }

    @Test func theDrainReadsNothingBackAndHandsParkedRecordsOver() {
        var (driver, _) = fullDriver()
        driver.machine.beginDrain()
        #expect(driver.finish(sent[0], .revoked(status: 204)).readBacks.isEmpty)
        let result = driver.machine.endDrain(journal: true)
        #expect(result.handedOver == 5 && result.lost == 0)
        #expect(driver.counts.parkedNow == 0)
    }

    @Test func adoptedRecordsParkWhenMemoryIsFull() {
        var driver = Driver(parks: true) {
            $0.capacity = 1
            $0.concurrency = 1
        }
        let adopted = tokens(5, prefix: "adopted").enumerated().map { index, token in
            (key: driver.key(token), revocation: AdoptedRevocation(token: token, loggedOutAt: driver.now.wall, receipt: receipt(UInt64(index))), expiresAt: UnixMilliseconds?.none)
        }
        let actions = driver.machine.adopt(adopted, now: driver.now)
        #expect(actions.calls.count == 1)
        #expect(actions.readBacks.count == 1)  // the room the call freed
        let counts = driver.counts
        #expect(counts.adopted == 5 && counts.parked == 4 && counts.parkedNow == 4 && counts.dropped == 0)
    }
}
