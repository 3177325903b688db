import DequeModule
import LogoutCore

/// A moment as the state machine sees it: a monotonic reading for timers (immune to clock
/// steps) and the wall clock for what is stated in wall time (logout time, JWT `exp`).
struct RevocationInstant: Sendable, Equatable {
    /// Milliseconds on a monotonic clock with an arbitrary origin.
    var monotonic: Int64
    var wall: UnixMilliseconds
}

extension RevocationQueue {
    /// Every decision of the queue, as a value: events go in (a token submitted, a call
    /// finished, a retry timer fired, orphans adopted, a drain), with the time and randomness
    /// injected, and the *actions* to perform come out. It does no I/O, takes no lock and reads
    /// no clock; `RevocationQueue` holds it under a mutex and performs the actions.
    struct StateMachine {
        enum Phase: Equatable {
            /// Accepted; the journal append is under way (outside the lock).
            case journaling
            /// Accepted while memory was full; the journal append is under way, and the record
            /// parks on disk when it returns.
            case parking
            /// In the journal only, its token not in memory: waiting for room to be read back.
            case parked
            /// Being read back from the journal (outside the lock).
            case unparking
            /// In the fresh lane, never tried.
            case waiting
            /// A call failed; a timer will move it to the retry lane at `dueAt` (monotonic ms).
            case retrying(dueAt: Int64)
            /// In the retry lane, due now.
            case due
            case inFlight
            /// Final verdict at `at` (monotonic ms); remembered for the dedup window.
            case finished(at: Int64)
        }

        struct Entry {
            /// Nil once finished: the dedup table keeps no token.
            var token: AccessToken?
            var loggedOutAt: UnixMilliseconds
            /// No attempt starts at or after this wall time.
            var giveUpAt: UnixMilliseconds
            /// True when `giveUpAt` is the token's own `exp`, so the token is dead by then.
            var boundedByExp: Bool
            /// Journal records to complete at the final verdict: this process's append and any
            /// adopted duplicates.
            var receipts: [JournalReceipt]
            var phase: Phase
            var attempts = 0
        }

        enum Action: Equatable {
            /// Call the backend for `token`, logged out at `loggedOutAt`; report the outcome with `finished(key, ...)`.
            case call(TokenKey, AccessToken, loggedOutAt: UnixMilliseconds)
            /// After `milliseconds`, report `retryDue(key, ...)`.
            case scheduleRetry(TokenKey, milliseconds: Int64)
            /// Tell the journal these records got their final verdict.
            case complete([JournalReceipt])
            /// Read these parked records back from the journal (outside the lock), then report
            /// `unparked(...)` with the tokens read.
            case readBack([ParkedRecord])
            case log(LogEvent)
        }

        /// A revocation parked in the journal: its key and where the journal keeps it.
        struct ParkedRecord: Equatable {
            var key: TokenKey
            var receipt: JournalReceipt
        }

        /// What to log; the shell chooses words and levels. Tokens are named by fingerprint only.
        enum LogEvent: Equatable {
            case revoked(AccessToken, status: Int)
            case rejected(AccessToken, status: Int)
            case expired(AccessToken, attempts: Int, byExp: Bool)
            /// One failed attempt (debug): the next one in `retryIn` ms.
            case attemptFailed(AccessToken, RevocationOutcome.Failure, attempt: Int, retryIn: Int64)
            /// First failure after a success, or at start.
            case outageStarted(AccessToken, RevocationOutcome.Failure)
            /// First success after failures, with the attempts that failed meanwhile.
            case outageEnded(AccessToken, failedAttempts: Int, milliseconds: Int64)
            /// Tokens dropped since the last such line (at most one a second): memory was full
            /// and the journal refused them too.
            case dropped(count: Int)
            /// Parked records the journal could not read back: they stay in it for a successor.
            case readBackFailed(count: Int)
        }

        enum SubmitVerdict: Equatable {
            /// Append to the journal (outside the lock), then report `journaled(key, receipt, ...)`.
            case accepted
            /// Already pending, or finished within the dedup window.
            case duplicate
            /// Memory full without a journal, or the queue closed. `logCount` is set when a line
            /// is due (at most once a second): the number dropped since the last line.
            case dropped(logCount: Int?)
        }

        let settings: RevocationSettings
        /// True when a journal keeps every accepted token: past `capacity`, tokens then park in
        /// it instead of being dropped.
        let parksInJournal: Bool
        private(set) var entries: [TokenKey: Entry] = [:]
        /// First attempts, oldest first.
        private var fresh = Deque<TokenKey>()
        /// Retries that are due, and adopted revocations, oldest first.
        private var due = Deque<TokenKey>()
        /// Finished entries in the order they finished, for eviction.
        private var finishedOrder = Deque<(key: TokenKey, at: Int64)>()
        private var finishedCount = 0
        private var journalingCount = 0
        private var parkingCount = 0
        /// Parked in the journal, oldest first.
        private var parked = Deque<TokenKey>()
        /// Being read back from the journal.
        private var unparkingKeys = Set<TokenKey>()
        private var retryingKeys = Set<TokenKey>()
        /// Calls running now.
        private var inFlightKeys = Set<TokenKey>()
        var inFlight: Int { inFlightKeys.count }
        /// Fairness: when both lanes have work, the next slot goes to the retry lane if true.
        private var retryTurn = false
        private(set) var accepting = true
        /// Set when the drain ended: late outcomes were already counted as handed over or lost.
        private(set) var drained = false
        private var outage: (since: Int64, failedAttempts: Int)?
        private var lastDropLog: Int64?
        private var droppedSinceLog = 0
        private var counts = Counts()

        /// Drops are logged at most this often (ms), with the number dropped since the last line.
        static let dropLogInterval: Int64 = 1_000
        /// Parked records read back per journal visit: enough to amortise the hop, few enough
        /// that fresh room is not all taken by one batch.
        static let readBackBatch = 64

        init(settings: RevocationSettings, parksInJournal: Bool = false) {
            self.settings = settings
            self.parksInJournal = parksInJournal
        }

        /// Tokens held in memory waiting for a slot or a retry; bounded by `capacity` for new ones.
        private var pendingInMemory: Int {
            journalingCount + unparkingKeys.count + fresh.count + due.count + retryingKeys.count
        }

        // MARK: Events

        /// A logout handed over `token`. O(1) amortised: one hash lookup and some eviction.
        mutating func submit(
            _ key: TokenKey, token: AccessToken, loggedOutAt: UnixMilliseconds, now: RevocationInstant
        ) -> SubmitVerdict {
            evictFinished(now: now)
            // Pending, or finished and still remembered (evictFinished left it: within the window).
            if entries[key] != nil {
                counts.duplicate += 1
                return .duplicate
            }
            guard accepting else { return .dropped(logCount: noteDrop(now: now)) }
            // Memory full: with a journal the token waits there (parked: nothing lost, little
            // memory), and parked ones are read back oldest first as room frees; without one it
            // is dropped. New logouts park while older ones wait, so order is kept.
            guard pendingInMemory < settings.capacity, parked.isEmpty else {
                guard parksInJournal else { return .dropped(logCount: noteDrop(now: now)) }
                entries[key] = entry(token: token, loggedOutAt: loggedOutAt, expiresAt: nil, receipts: [], phase: .parking)
                parkingCount += 1
                return .accepted
            }
            counts.queued += 1
            entries[key] = entry(token: token, loggedOutAt: loggedOutAt, expiresAt: nil, receipts: [], phase: .journaling)
            journalingCount += 1
            return .accepted
        }

        /// Counts one drop; the number dropped since the last line when a line is due.
        private mutating func noteDrop(now: RevocationInstant) -> Int? {
            counts.dropped += 1
            droppedSinceLog += 1
            guard lastDropLog.map({ now.monotonic - $0 >= Self.dropLogInterval }) ?? true else { return nil }
            defer {
                lastDropLog = now.monotonic
                droppedSinceLog = 0
            }
            return droppedSinceLog
        }

        /// The journal append for an accepted token returned; a nil receipt keeps it in memory only.
        /// `expiresAt` is the token's JWT `exp` when it has one (read outside the lock, and only
        /// for accepted tokens, so that a replayed cookie costs one lookup).
        mutating func journaled(
            _ key: TokenKey, receipt: JournalReceipt?, expiresAt: UnixMilliseconds?, now: RevocationInstant
        ) -> [Action] {
            guard var entry = entries[key], entry.phase == .journaling || entry.phase == .parking else {
                // The drain ended between the two halves of `submit`: the record stays for a successor.
                return []
            }
            if let expiresAt {
                entry.giveUpAt = expiresAt
                entry.boundedByExp = true
            }
            if entry.phase == .parking {
                parkingCount -= 1
                guard let receipt else {
                    // Memory full and the journal refused it too (full, or failing): dropped.
                    entries[key] = nil
                    return noteDrop(now: now).map { [.log(.dropped(count: $0))] } ?? []
                }
                counts.queued += 1
                counts.parked += 1
                entry.token = nil
                entry.receipts = [receipt]
                entry.phase = .parked
                entries[key] = entry
                parked.append(key)
                return readBackParked()
            }
            journalingCount -= 1
            if let receipt { entry.receipts.append(receipt) }
            entry.phase = .waiting
            entries[key] = entry
            fresh.append(key)
            return startCalls(now: now)
        }

        /// A call ended after `latency`. `random` draws the jitter.
        mutating func finished(
            _ key: TokenKey, outcome: RevocationOutcome, latency: Duration, now: RevocationInstant,
            random: inout some RandomNumberGenerator
        ) -> [Action] {
            guard !drained, var entry = entries[key], entry.phase == .inFlight, let token = entry.token else { return [] }
            inFlightKeys.remove(key)
            counts.latency.record(latency)
            var actions: [Action] = []
            switch outcome {
            case .revoked(let status):
                counts.revoked += 1
                actions += endOutage(token, now: now)
                actions.append(.log(.revoked(token, status: status)))
                actions += finish(key, now: now)
            case .stored:
                counts.stored += 1
                actions += endOutage(token, now: now)
                actions += finish(key, now: now)
            case .rejected(let status):
                // An answer, even a refusal, shows the backend is up.
                counts.rejected += 1
                actions += endOutage(token, now: now)
                actions.append(.log(.rejected(token, status: status)))
                actions += finish(key, now: now)
            case .failed(let failure, let retryAfter):
                counts.failed += 1
                if outage == nil {
                    outage = (now.monotonic, 0)
                    actions.append(.log(.outageStarted(token, failure)))
                }
                outage?.failedAttempts += 1
                let delay = retryDelay(attempt: entry.attempts, retryAfter: retryAfter, random: &random)
                if now.wall + delay >= entry.giveUpAt {
                    counts.expired += 1
                    actions.append(.log(.expired(token, attempts: entry.attempts, byExp: entry.boundedByExp)))
                    actions += finish(key, now: now)
                } else {
                    counts.retried += 1
                    entry.phase = .retrying(dueAt: now.monotonic + delay)
                    entries[key] = entry
                    retryingKeys.insert(key)
                    actions.append(.log(.attemptFailed(token, failure, attempt: entry.attempts, retryIn: delay)))
                    actions.append(.scheduleRetry(key, milliseconds: delay))
                }
            }
            return actions + startCalls(now: now)
        }

        /// A retry timer fired.
        mutating func retryDue(_ key: TokenKey, now: RevocationInstant) -> [Action] {
            guard var entry = entries[key], case .retrying = entry.phase else { return [] }
            retryingKeys.remove(key)
            entry.phase = .due
            entries[key] = entry
            due.append(key)
            return startCalls(now: now)
        }

        /// Records taken over from orphaned journal segments, with each one's key and JWT `exp`.
        /// They go to the retry lane (they have waited already), or park in the journal when
        /// memory is full, and are never lost: a duplicate of a pending token joins its
        /// receipts, a duplicate of a finished one is completed at once.
        mutating func adopt(
            _ records: [(key: TokenKey, revocation: AdoptedRevocation, expiresAt: UnixMilliseconds?)], now: RevocationInstant
        ) -> [Action] {
            evictFinished(now: now)
            var completeNow: [JournalReceipt] = []
            for (key, revocation, expiresAt) in records {
                counts.adopted += 1
                if var entry = entries[key] {
                    if case .finished = entry.phase {
                        completeNow.append(revocation.receipt)
                    } else {
                        entry.receipts.append(revocation.receipt)
                        entries[key] = entry
                    }
                    continue
                }
                var adopted = entry(
                    token: revocation.token, loggedOutAt: revocation.loggedOutAt, expiresAt: expiresAt,
                    receipts: [revocation.receipt], phase: .due)
                if parksInJournal && (pendingInMemory >= settings.capacity || !parked.isEmpty) {
                    // The record is ours now (re-appended): it can wait there like any parked one.
                    adopted.token = nil
                    adopted.phase = .parked
                    entries[key] = adopted
                    parked.append(key)
                    counts.parked += 1
                } else {
                    entries[key] = adopted
                    due.append(key)
                }
            }
            return (completeNow.isEmpty ? [] : [.complete(completeNow)]) + startCalls(now: now)
        }

        /// Parked records were read back: `tokens[i]` is the token of `records[i]`, nil when the
        /// journal could not read it (it stays there, pending, for a successor to adopt).
        mutating func unparked(_ records: [ParkedRecord], tokens: [AccessToken?], now: RevocationInstant) -> [Action] {
            guard !drained else { return [] }
            var failed = 0
            for (record, token) in zip(records, tokens) {
                guard var entry = entries[record.key], entry.phase == .unparking else { continue }
                unparkingKeys.remove(record.key)
                guard let token else {
                    failed += 1
                    counts.lost += 1
                    entries[record.key] = nil
                    continue
                }
                entry.token = token
                entry.phase = .due
                entries[record.key] = entry
                due.append(record.key)
            }
            return (failed > 0 ? [.log(.readBackFailed(count: failed))] : []) + startCalls(now: now)
        }

        /// Shutdown begins: no more tokens.
        mutating func beginDrain() {
            accepting = false
        }

        /// True when nothing the drain must wait for is left: no call running or ready, no
        /// append under way, no retry due before `deadline` (monotonic ms).
        func isIdle(deadline: Int64) -> Bool {
            guard inFlight == 0, fresh.isEmpty, due.isEmpty, journalingCount == 0, parkingCount == 0, unparkingKeys.isEmpty
            else { return false }
            return !retryingKeys.contains(where: { key in
                if case .retrying(let dueAt) = entries[key]?.phase { return dueAt < deadline }
                return false
            })
        }

        /// The drain deadline passed or nothing is left: every pending revocation is written off,
        /// as handed over when the journal keeps a record of it, else as lost. Calls still
        /// running are written off too; their late outcomes are ignored.
        mutating func endDrain(journal: Bool) -> (handedOver: Int, lost: Int) {
            var handedOver = 0
            var lost = 0
            for (key, entry) in entries {
                if case .finished = entry.phase { continue }
                if journal && !entry.receipts.isEmpty { handedOver += 1 } else { lost += 1 }
                entries[key] = nil
            }
            fresh.removeAll()
            due.removeAll()
            parked.removeAll()
            retryingKeys.removeAll()
            journalingCount = 0
            parkingCount = 0
            unparkingKeys.removeAll()
            inFlightKeys.removeAll()
            accepting = false
            drained = true
            counts.handedOver += handedOver
            counts.lost += lost
            return (handedOver, lost)
        }

        /// The counters at `now`.
        func snapshot(now: RevocationInstant) -> Counts {
            var counts = self.counts
            counts.waiting = journalingCount + fresh.count
            counts.retrying = retryingKeys.count + due.count
            counts.pending = counts.waiting + counts.retrying
            counts.inFlight = inFlight
            counts.parkedNow = parked.count + unparkingKeys.count
            // Only what memory holds (bounded by capacity and concurrency) and the first parked
            // one, which parked first: the dedup and parked entries can number millions, and
            // this runs under the lock the workers take.
            var oldest: UnixMilliseconds?
            func consider(_ key: TokenKey) {
                guard let entry = entries[key] else { return }
                oldest = min(oldest ?? entry.loggedOutAt, entry.loggedOutAt)
            }
            for key in fresh { consider(key) }
            for key in due { consider(key) }
            for key in retryingKeys { consider(key) }
            for key in inFlightKeys { consider(key) }
            for key in unparkingKeys { consider(key) }
            if let key = parked.first { consider(key) }
            counts.oldestPendingAgeSeconds = oldest.map { max(0, Int((now.wall - $0) / 1000)) } ?? 0
            return counts
        }

        // MARK: Internals

        private func entry(
            token: AccessToken, loggedOutAt: UnixMilliseconds, expiresAt: UnixMilliseconds?, receipts: [JournalReceipt],
            phase: Phase
        ) -> Entry {
            // The cookie's issuedAt says nothing here: renew re-issues it with the same token.
            let giveUpAt = expiresAt ?? loggedOutAt + settings.maxAge.wholeMilliseconds
            return Entry(
                token: token, loggedOutAt: loggedOutAt, giveUpAt: giveUpAt, boundedByExp: expiresAt != nil,
                receipts: receipts, phase: phase)
        }

        /// Fills free call slots. When both lanes have work they take turns, one call each:
        /// a flood of fresh logouts cannot hold retries back forever, and a backlog of retries
        /// after an outage cannot hold back the logouts happening now, which get at least half
        /// of the slots. (Fresh-first would starve retries under sustained load; retry-first
        /// would let an outage's backlog delay every new logout by minutes.)
        private mutating func startCalls(now: RevocationInstant) -> [Action] {
            var actions: [Action] = []
            while inFlight < settings.concurrency, let key = nextReady() {
                guard var entry = entries[key], let token = entry.token else { continue }
                if now.wall >= entry.giveUpAt {
                    counts.expired += 1
                    actions.append(.log(.expired(token, attempts: entry.attempts, byExp: entry.boundedByExp)))
                    actions += finish(key, now: now)
                    continue
                }
                entry.phase = .inFlight
                entry.attempts += 1
                entries[key] = entry
                inFlightKeys.insert(key)
                actions.append(.call(key, token, loggedOutAt: entry.loggedOutAt))
            }
            return actions + readBackParked()
        }

        /// Asks for parked records to be read back while memory has room (none during the drain:
        /// they are handed over where they are).
        private mutating func readBackParked() -> [Action] {
            guard accepting else { return [] }
            var batch: [ParkedRecord] = []
            while pendingInMemory < settings.capacity, batch.count < Self.readBackBatch, let key = parked.popFirst() {
                guard var entry = entries[key], entry.phase == .parked, let receipt = entry.receipts.first else { continue }
                entry.phase = .unparking
                entries[key] = entry
                unparkingKeys.insert(key)
                batch.append(ParkedRecord(key: key, receipt: receipt))
            }
            return batch.isEmpty ? [] : [.readBack(batch)]
        }

        private mutating func nextReady() -> TokenKey? {
            if fresh.isEmpty { return due.popFirst() }
            if due.isEmpty { return fresh.popFirst() }
            retryTurn.toggle()
            return retryTurn ? due.popFirst() : fresh.popFirst()
        }

        /// The final verdict: remembered for the dedup window without its token, receipts completed.
        private mutating func finish(_ key: TokenKey, now: RevocationInstant) -> [Action] {
            guard var entry = entries[key] else { return [] }
            entry.token = nil
            entry.phase = .finished(at: now.monotonic)
            let receipts = entry.receipts
            entry.receipts = []
            entries[key] = entry
            finishedOrder.append((key, now.monotonic))
            finishedCount += 1
            evictFinished(now: now)
            return receipts.isEmpty ? [] : [.complete(receipts)]
        }

        /// Forgets finished entries older than the window, and the oldest past `dedupEntries`.
        private mutating func evictFinished(now: RevocationInstant) {
            let window = settings.dedupWindow.wholeMilliseconds
            while let first = finishedOrder.first,
                finishedCount > settings.dedupEntries || now.monotonic - first.at >= window
            {
                finishedOrder.removeFirst()
                finishedCount -= 1
                if entries[first.key]?.phase == .finished(at: first.at) { entries[first.key] = nil }
            }
        }

        func retryDelay(attempt: Int, retryAfter: Int64?, random: inout some RandomNumberGenerator) -> Int64 {
            settings.retryDelay(attempt: attempt, retryAfter: retryAfter, random: &random)
        }

        private mutating func endOutage(_ token: AccessToken, now: RevocationInstant) -> [Action] {
            guard let outage else { return [] }
            self.outage = nil
            return [
                .log(.outageEnded(token, failedAttempts: outage.failedAttempts, milliseconds: now.monotonic - outage.since))
            ]
        }
    }
}
