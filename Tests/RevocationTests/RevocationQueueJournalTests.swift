import Logging
import LogoutCore
import Synchronization
import Testing

@testable import Revocation

/// A journal that keeps records in memory and records every call made to it.
final class RecordingJournal: RevocationJournal {
    private struct State {
        var next: UInt64 = 0
        var appended: [AccessToken] = []
        var tokens: [JournalReceipt: AccessToken] = [:]
        var pending: Set<JournalReceipt> = []
        var readBacks = 0
        var completed: [JournalReceipt] = []
        var orphans: [AdoptedRevocation] = []
        var adoptCalls = 0
        var handOverCalls = 0
        var refuseAppends = false
    }

    private let state = Mutex(State())

    init(orphans: [AdoptedRevocation] = [], refuseAppends: Bool = false) {
        state.withLock {
            $0.orphans = orphans
            $0.pending = Set(orphans.map(\.receipt))
            for orphan in orphans { $0.tokens[orphan.receipt] = orphan.token }
            $0.refuseAppends = refuseAppends
        }
    }

    func append(token: AccessToken, loggedOutAt: UnixMilliseconds) -> JournalReceipt? {
        state.withLock { state in
            guard !state.refuseAppends else { return nil }
            state.next += 1
            let receipt = JournalReceipt(segment: 1, record: state.next)
            state.appended.append(token)
            state.tokens[receipt] = token
            state.pending.insert(receipt)
            return receipt
        }
    }

    func complete(_ receipt: JournalReceipt) {
        state.withLock {
            $0.completed.append(receipt)
            $0.pending.remove(receipt)
        }
    }

    func readBack(_ receipt: JournalReceipt) -> AccessToken? {
        state.withLock { state in
            state.readBacks += 1
            return state.pending.contains(receipt) ? state.tokens[receipt] : nil
        }
    }

    func adoptOrphans() -> [AdoptedRevocation] {
        state.withLock { state in
            state.adoptCalls += 1
            defer { state.orphans.removeAll() }
            return state.orphans
        }
    }

    func handOver() -> Int {
        state.withLock { state in
            state.handOverCalls += 1
            return state.pending.count
        }
    }

    var statistics: JournalStatistics { JournalStatistics() }

    var appended: [AccessToken] { state.withLock { $0.appended } }
    var completed: [JournalReceipt] { state.withLock { $0.completed } }
    var pendingCount: Int { state.withLock { $0.pending.count } }
    var adoptCalls: Int { state.withLock { $0.adoptCalls } }
    var readBacks: Int { state.withLock { $0.readBacks } }
    var handOverCalls: Int { state.withLock { $0.handOverCalls } }
}

/// Fails the first `failures` calls for every token, then revokes it.
func flakyBackend(failures: Int, outcome: RevocationOutcome = .failed(.status(503))) -> RecordingNotifier {
    final class Seen: Sendable {
        let calls = Mutex<[AccessToken: Int]>([:])
    }
    let seen = Seen()
    return RecordingNotifier { token in
        let count = seen.calls.withLock { seen in
            seen[token, default: 0] += 1
            return seen[token]!
        }
        return count <= failures ? outcome : .revoked(status: 204)
    }
}

@Suite struct RevocationQueueJournalTests {
    let logs = InMemoryLogHandler.Store()
    var logger: Logger {
        let store = logs
        return Logger(label: "test.revocation") { _ in InMemoryLogHandler(store: store) }
    }

    func settings(_ configure: (inout RevocationSettings) -> Void = { _ in }) -> RevocationSettings {
        var settings = RevocationSettings()
        settings.retryBase = .milliseconds(1)
        settings.retryMax = .milliseconds(5)
        configure(&settings)
        return settings
    }

    @Test func failedCallsAreRetriedUntilEveryTokenIsRevoked() async {
        let notifier = flakyBackend(failures: 3)
        let journal = RecordingJournal()
        let queue = RevocationQueue(settings: settings(), notifier: notifier, journal: journal, logger: logger)
        let sent = tokens(20)
        for token in sent { queue.submit(token, loggedOutAt: RevocationInstant.current().wall) }

        #expect(await eventually { queue.counts.revoked == 20 })
        let counts = queue.counts
        #expect(counts.failed == 60)
        #expect(counts.retried == 60)
        #expect(counts.pending == 0)
        #expect(counts.latency.count == 80)
        #expect(notifier.received.count == 80)
        #expect(journal.appended == sent)
        #expect(await eventually { journal.completed.count == 20 && journal.pendingCount == 0 })
        // One line when the outage starts and one when it ends, not one per failed attempt.
        let lines = logs.all
        let errors = lines.filter { $0.level == .error }
        #expect(errors.count >= 1)
        #expect(errors.allSatisfy { $0.message.hasPrefix("revocations failing") })
        #expect(lines.filter { $0.level == .debug }.count == 60)
        #expect(lines.allSatisfy { !"\($0)".contains("VALUE") })
    }

    /// Ten times more distinct tokens than memory holds, against a failing backend: the
    /// overflow parks in the journal, is read back as room frees, and every token is revoked.
    @Test func tokensPastCapacityParkInTheJournalAndAreAllRevoked() async {
        let notifier = flakyBackend(failures: 2)
        let journal = RecordingJournal()
        let queue = RevocationQueue(
            settings: settings {
                $0.capacity = 5
                $0.concurrency = 2
            }, notifier: notifier, journal: journal, logger: logger)
        let sent = tokens(50, prefix: "parked")
        for token in sent { queue.submit(token, loggedOutAt: RevocationInstant.current().wall) }
        #expect(queue.counts.dropped == 0)
        #expect(await eventually { queue.counts.revoked == 50 })
        let counts = queue.counts
        #expect(counts.parked >= 40 && counts.parkedNow == 0 && counts.pending == 0)
        #expect(counts.dropped == 0 && counts.lost == 0)
        #expect(journal.readBacks == counts.parked)
        #expect(Set(notifier.received) == Set(sent))
        #expect(await eventually { journal.completed.count == 50 && journal.pendingCount == 0 })
        #expect(logs.all.allSatisfy { !"\($0)".contains("VALUE") })
    }

    @Test func aReplayedCookieIsCalledOnceAndNeverCrowdsOutOthers() async {
        let notifier = RecordingNotifier(holding: true)
        let queue = RevocationQueue(
            settings: settings {
                $0.capacity = 10
                $0.concurrency = 2
            }, notifier: notifier, journal: nil, logger: logger)
        let replayed = token("replayed-VALUE")
        let others = tokens(10)
        for round in 0..<1_000 {
            queue.enqueue(replayed)
            if round % 100 == 0 { queue.enqueue(others[round / 100]) }
        }
        var counts = queue.counts
        #expect(counts.queued == 11)
        #expect(counts.duplicate == 999)
        #expect(counts.dropped == 0)
        notifier.releaseAll()
        #expect(await eventually { queue.counts.revoked == 11 })
        #expect(notifier.received.filter { $0 == replayed }.count == 1)
        #expect(Set(notifier.received) == Set(others + [replayed]))
        // Revoked within the dedup window: still not queued again.
        queue.enqueue(replayed)
        counts = queue.counts
        #expect(counts.duplicate == 1_000)
        #expect(counts.queued == 11)
    }

    @Test func orphansAreAdoptedAtStartAndTheirRecordsCompleted() async {
        let orphans = tokens(5, prefix: "orphan").enumerated().map { index, token in
            AdoptedRevocation(token: token, loggedOutAt: RevocationInstant.current().wall - 60_000, receipt: JournalReceipt(segment: 9, record: UInt64(index)))
        }
        let journal = RecordingJournal(orphans: orphans)
        let notifier = RecordingNotifier()
        let queue = RevocationQueue(
            settings: settings { $0.adoptionInterval = .milliseconds(10) }, notifier: notifier, journal: journal,
            logger: logger)
        #expect(await eventually { queue.counts.revoked == 5 })
        #expect(queue.counts.adopted == 5)
        #expect(await eventually { Set(journal.completed) == Set(orphans.map(\.receipt)) })
        #expect(Set(notifier.received) == Set(orphans.map(\.token)))
        // Adoption goes on periodically.
        #expect(await eventually { journal.adoptCalls >= 3 })
        _ = queue.drain(timeout: .seconds(5))
    }

    @Test func drainWithAJournalHandsOverInsteadOfLosing() async {
        let notifier = RecordingNotifier(holding: true)
        let journal = RecordingJournal()
        let queue = RevocationQueue(
            settings: settings { $0.concurrency = 2 }, notifier: notifier, journal: journal, logger: logger)
        for token in tokens(5) { queue.enqueue(token) }
        #expect(await eventually { notifier.heldCount == 2 })

        let counts = queue.drain(timeout: .milliseconds(20))
        #expect(counts.handedOver == 5)
        #expect(counts.lost == 0)
        #expect(journal.handOverCalls == 1)
        #expect(!logs.all.contains { $0.level == .error })
        #expect(logs.all.contains { $0.level == .notice && $0.metadata["handed_over"] == "5" })
        notifier.releaseAll()
        // Late outcomes after the hand-over complete nothing: the successor owns the records now.
        try? await Task.sleep(for: .milliseconds(20))
        #expect(journal.completed.isEmpty)
    }

    @Test func aTokenTheJournalRefusedIsKeptInMemoryAndLostOnlyAtShutdown() async {
        let notifier = RecordingNotifier(holding: true)
        let journal = RecordingJournal(refuseAppends: true)
        let queue = RevocationQueue(
            settings: settings { $0.concurrency = 1 }, notifier: notifier, journal: journal, logger: logger)
        for token in tokens(3) { queue.enqueue(token) }
        #expect(await eventually { notifier.heldCount == 1 })
        let counts = queue.drain(timeout: .milliseconds(20))
        #expect(counts.lost == 3)
        #expect(counts.handedOver == 0)
    }

    @Test func drainWaitsForRetriesDueBeforeTheDeadline() async {
        let notifier = flakyBackend(failures: 2, outcome: .failed(.timeout))
        let queue = RevocationQueue(settings: settings(), notifier: notifier, journal: nil, logger: logger)
        for token in tokens(4) { queue.enqueue(token) }
        let counts = queue.drain(timeout: .seconds(30))
        #expect(counts.revoked == 4)
        #expect(counts.lost == 0)
        #expect(counts.failed == 8)
    }

    @Test func retryAfterIsHonoured() async {
        let notifier = flakyBackend(failures: 1, outcome: .failed(.status(503), retryAfter: 60_000))
        let queue = RevocationQueue(
            settings: settings { $0.retryMax = .seconds(60) }, notifier: notifier, journal: nil, logger: logger)
        queue.enqueue(token("later-VALUE"))
        #expect(await eventually { queue.counts.retried == 1 })
        try? await Task.sleep(for: .milliseconds(50))
        #expect(notifier.received.count == 1)
        #expect(queue.counts.retrying == 1)
        let counts = queue.drain(timeout: .milliseconds(10))
        #expect(counts.lost == 1)
    }

    @Test func finalFourHundredsAreCalledOnce() async {
        let notifier = RecordingNotifier { _ in .rejected(status: 401) }
        let journal = RecordingJournal()
        let queue = RevocationQueue(settings: settings(), notifier: notifier, journal: journal, logger: logger)
        for token in tokens(3) { queue.enqueue(token) }
        #expect(await eventually { queue.counts.rejected == 3 })
        try? await Task.sleep(for: .milliseconds(20))
        #expect(notifier.received.count == 3)
        #expect(journal.completed.count == 3)
    }
}

@Suite struct HTTPBackendNotifierSettingTests {
    static let refused: [String] = [
        "http://127.0.0.1:65536/api/auth/logout",
        "http://127.0.0.1:99999999999/x",
        "http://127.0.0.1:0/x",
        "http://backend.internal:65536/x",
        "http://127.0.0.1:99999999999999999999999/x",
        "not a url",
        "ftp://127.0.0.1/x",
        "http:///x",
    ]

    @Test(arguments: refused)
    func refusesAnUnusableURLAtStart(url: String) {
        #expect {
            _ = try HTTPBackendNotifier(url: url, concurrency: 1, connectTimeout: .seconds(1), timeout: .seconds(1))
        } throws: { error in
            guard let error = error as? CrocanteError, case .invalidSetting("API_GATEWAY", _) = error else { return false }
            return true
        }
    }

    @Test func acceptsAUsableURL() throws {
        let notifier = try HTTPBackendNotifier(
            url: "http://127.0.0.1:8081/api/auth/logout", concurrency: 1, connectTimeout: .seconds(1), timeout: .seconds(1))
        notifier.shutdown()
    }
}
