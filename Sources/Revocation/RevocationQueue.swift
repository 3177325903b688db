import Dispatch
import Logging
import LogoutCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Delivers every revocation it accepts at least once, until the backend answers 2xx or a final
/// 4xx or the token can no longer be alive: deduplicated, retried with backoff, journaled when
/// a journal is given.
///
/// The decisions are a pure value, `StateMachine`, held under a short lock; this class performs
/// what it asks for: backend calls, retry and adoption timers (on one Dispatch queue), journal
/// calls and log lines. `submit` is O(1) and never waits for the backend. Log lines name a token
/// by its fingerprint, never the token.
public final class RevocationQueue: Sendable {
    /// Tokens that may wait in memory (waiting + retrying; calls in flight not counted). Past it,
    /// with a journal, tokens park there and are read back as room frees; without one, dropped.
    public let capacity: Int
    public let settings: RevocationSettings
    private let notifier: any BackendNotifier
    private let journal: (any RevocationJournal)?
    private let logger: Logger
    private let machine: Mutex<StateMachine>
    private let keyer: TokenKeyer
    private let now: @Sendable () -> RevocationInstant
    private let dispatchQueue = DispatchQueue(label: "crocante-logout.revocation")

    /// Memory only, as before the journal: `RevocationQueue(settings:notifier:journal:logger:)` with
    /// the other settings at their defaults.
    public convenience init(capacity: Int, concurrency: Int, notifier: any BackendNotifier, logger: Logger) {
        self.init(settings: RevocationSettings(capacity: capacity, concurrency: concurrency), notifier: notifier, journal: nil, logger: logger)
    }

    /// - Parameters:
    ///   - journal: the spool; nil runs memory-only (nothing survives a crash or restart).
    ///     When given, orphaned records are adopted at once and every `adoptionInterval`.
    public convenience init(
        settings: RevocationSettings, notifier: any BackendNotifier, journal: (any RevocationJournal)?, logger: Logger
    ) {
        self.init(settings: settings, notifier: notifier, journal: journal, logger: logger, now: { RevocationInstant.current() })
    }

    /// With an injected clock, for tests.
    init(
        settings: RevocationSettings, notifier: any BackendNotifier, journal: (any RevocationJournal)?, logger: Logger,
        keyer: TokenKeyer = TokenKeyer(), now: @escaping @Sendable () -> RevocationInstant
    ) {
        self.capacity = settings.capacity
        self.settings = settings
        self.notifier = notifier
        self.journal = journal
        self.logger = logger
        self.keyer = keyer
        self.now = now
        machine = Mutex(StateMachine(settings: settings, parksInJournal: journal != nil))
        if journal != nil {
            dispatchQueue.async { [weak self] in self?.adoptOrphans() }
        }
    }

    /// Same as `submit(token, loggedOutAt: now)`.
    public func enqueue(_ token: AccessToken) {
        submit(token, loggedOutAt: now().wall)
    }

    /// Hands `token` over for revocation. Called on a worker thread: a keyed hash and a JWT
    /// peek outside the lock, one table lookup under it, then the journal append. Never waits
    /// for the backend.
    public func submit(_ token: AccessToken, loggedOutAt: UnixMilliseconds) {
        let key = keyer.key(for: token)
        let instant = now()
        let verdict = machine.withLock { $0.submit(key, token: token, loggedOutAt: loggedOutAt, now: instant) }
        switch verdict {
        case .duplicate:
            return
        case .dropped(let logCount):
            if let logCount {
                logger.error(
                    "revocation dropped: queue full or closed, the token stays alive until it expires",
                    metadata: ["token": "\(token.fingerprint)", "dropped": "\(logCount)", "capacity": "\(capacity)"])
            }
            return
        case .accepted:
            break
        }
        // Only accepted tokens pay for the JWT peek, so a replayed cookie costs one lookup.
        let expiresAt = TokenExpiry.of(token)
        let receipt = journal?.append(token: token, loggedOutAt: loggedOutAt)
        let later = now()
        let actions = machine.withLock { $0.journaled(key, receipt: receipt, expiresAt: expiresAt, now: later) }
        // Calls start on the queue's thread, never on the worker that serves logouts.
        if !actions.isEmpty { dispatchQueue.async { self.perform(actions) } }
    }

    /// The counters now.
    public var counts: Counts {
        let instant = now()
        return machine.withLock { $0.snapshot(now: instant) }
    }

    /// Stops taking tokens and waits up to `timeout` for the waiting and running calls to end;
    /// retries due after the deadline are not awaited. What is left is handed over to the
    /// journal (`handOver`, counted `handedOver`), or without a journal counted as lost and
    /// logged. Returns the final counters.
    public func drain(timeout: Duration) -> Counts {
        let start = now()
        let deadline = start.monotonic + timeout.wholeMilliseconds
        machine.withLock { $0.beginDrain() }
        while now().monotonic < deadline {
            if machine.withLock({ $0.isIdle(deadline: deadline) }) { break }
            usleep(5_000)
        }
        let (handedOver, lost) = machine.withLock { $0.endDrain(journal: journal != nil) }
        if let journal {
            let stillPending = journal.handOver()
            if handedOver > 0 || stillPending > 0 {
                logger.notice(
                    "revocations handed over: a successor on the same spool delivers them",
                    metadata: ["handed_over": "\(handedOver)", "journal_pending": "\(stillPending)"])
            }
        }
        if lost > 0 {
            logger.error(
                "revocations lost at shutdown: their tokens stay alive until they expire", metadata: ["lost": "\(lost)"])
        }
        return counts
    }

    // MARK: Performing actions

    private func perform(_ actions: [StateMachine.Action]) {
        for action in actions {
            switch action {
            case .call(let key, let token, let loggedOutAt):
                let started = ContinuousClock.now
                // The outcome is handled where it arrives (the HTTP client's event loop): a hop
                // through the Dispatch queue would cost two thread wake-ups per call for nothing.
                notifier.revoke(token, loggedOutAt: loggedOutAt) { outcome in
                    self.finished(key, outcome, latency: ContinuousClock.now - started)
                }
            case .scheduleRetry(let key, let milliseconds):
                dispatchQueue.asyncAfter(deadline: .now() + .milliseconds(Int(milliseconds))) { [weak self] in
                    guard let self else { return }
                    let instant = now()
                    perform(machine.withLock { $0.retryDue(key, now: instant) })
                }
            case .complete(let receipts):
                for receipt in receipts { journal?.complete(receipt) }
            case .readBack(let records):
                // File reads: on the queue's thread, never on an event loop or a worker.
                dispatchQueue.async { self.readBack(records) }
            case .log(let event):
                log(event)
            }
        }
    }

    private func readBack(_ records: [StateMachine.ParkedRecord]) {
        let tokens = records.map { journal?.readBack($0.receipt) }
        let instant = now()
        perform(machine.withLock { $0.unparked(records, tokens: tokens, now: instant) })
    }

    private func finished(_ key: TokenKey, _ outcome: RevocationOutcome, latency: Duration) {
        let instant = now()
        var random = SystemRandomNumberGenerator()
        perform(machine.withLock { $0.finished(key, outcome: outcome, latency: latency, now: instant, random: &random) })
    }

    /// Takes over what crashed or stopped predecessors left, then again every `adoptionInterval`
    /// until the drain begins.
    private func adoptOrphans() {
        guard let journal, machine.withLock({ $0.accepting }) else { return }
        let records = journal.adoptOrphans().map { revocation in
            (key: keyer.key(for: revocation.token), revocation: revocation, expiresAt: TokenExpiry.of(revocation.token))
        }
        if !records.isEmpty {
            logger.notice("revocations adopted from an orphaned spool segment", metadata: ["adopted": "\(records.count)"])
            let instant = now()
            perform(machine.withLock { $0.adopt(records, now: instant) })
        }
        dispatchQueue.asyncAfter(deadline: .now() + .milliseconds(Int(settings.adoptionInterval.wholeMilliseconds))) {
            [weak self] in self?.adoptOrphans()
        }
    }

    /// Metadata is an autoclosure: the fingerprint (a SHA-256) is only computed for lines the level lets through.
    private func log(_ event: StateMachine.LogEvent) {
        switch event {
        case .revoked(let token, let status):
            RevocationLogLines.revoked(token, status: status, logger: logger)
        case .rejected(let token, let status):
            RevocationLogLines.rejected(token, status: status, logger: logger)
        case .expired(let token, let attempts, let byExp):
            RevocationLogLines.expired(token, attempts: attempts, byExp: byExp, logger: logger)
        case .attemptFailed(let token, let failure, let attempt, let retryIn):
            RevocationLogLines.attemptFailed(token, reason: "\(failure)", attempt: attempt, retryIn: retryIn, logger: logger)
        case .outageStarted(let token, let failure):
            logger.error(
                "revocations failing: the backend does not answer, retrying until it does",
                metadata: ["token": "\(token.fingerprint)", "reason": "\(failure)"])
        case .dropped(let count):
            logger.error(
                "revocation dropped: queue full and the spool refused it, the token stays alive until it expires",
                metadata: ["dropped": "\(count)", "capacity": "\(capacity)"])
        case .readBackFailed(let count):
            logger.error(
                "parked revocations not readable back from the spool: left there for a successor to adopt",
                metadata: ["records": "\(count)"])
        case .outageEnded(let token, let failedAttempts, let milliseconds):
            logger.notice(
                "revocations succeeding again",
                metadata: [
                    "token": "\(token.fingerprint)", "failed_attempts": "\(failedAttempts)",
                    "seconds": "\(milliseconds / 1000)",
                ])
        }
    }
}

extension RevocationInstant {
    private static let origin = ContinuousClock.now

    /// Now, on the continuous clock and the wall clock.
    static func current() -> RevocationInstant {
        let (seconds, attoseconds) = (ContinuousClock.now - origin).components
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        return RevocationInstant(
            monotonic: seconds * 1_000 + attoseconds / 1_000_000_000_000_000,
            wall: Int64(wall.tv_sec) * 1_000 + Int64(wall.tv_nsec) / 1_000_000)
    }
}
