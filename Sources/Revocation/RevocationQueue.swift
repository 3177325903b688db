import DequeModule
import Dispatch
import Logging
import LogoutCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A bounded in-memory queue of tokens to revoke, drained on a Dispatch queue with at most
/// `concurrency` backend calls at once.
///
/// `enqueue` is O(1) under a short lock and never waits for the backend: a full queue drops
/// the token, counted and logged. Every outcome is counted and logged with the token's
/// fingerprint, never the token.
public final class RevocationQueue: Sendable {
    /// The queue's counters at one moment.
    public struct Counts: Sendable, Equatable {
        public var queued = 0
        public var waiting = 0
        public var inFlight = 0
        public var revoked = 0
        public var rejected = 0
        public var failed = 0
        public var dropped = 0
        public var lost = 0
    }

    private struct State {
        var waiting = Deque<AccessToken>()
        var inFlight = 0
        var accepting = true
        /// Set when `drain` gave up: late outcomes were already counted as lost.
        var drained = false
        var counts = Counts()
        var lastDropLog: ContinuousClock.Instant?
        var droppedSinceLog = 0
    }

    public let capacity: Int
    private let concurrency: Int
    private let notifier: any BackendNotifier
    private let logger: Logger
    private let state = Mutex(State())
    private let dispatchQueue = DispatchQueue(label: "crocante-logout.revocation")
    private let clock = ContinuousClock()
    /// Drops are logged at most this often, with the number dropped since the last line.
    private static var dropLogInterval: Duration { .seconds(1) }

    public init(capacity: Int, concurrency: Int, notifier: any BackendNotifier, logger: Logger) {
        self.capacity = capacity
        self.concurrency = concurrency
        self.notifier = notifier
        self.logger = logger
    }

    /// Hands `token` to the backend as soon as a call slot is free. Never blocks.
    public func enqueue(_ token: AccessToken) {
        enum Verdict { case start, wait, drop(logCount: Int?) }
        let verdict = state.withLock { state -> Verdict in
            if state.accepting && state.inFlight < concurrency {
                state.inFlight += 1
                state.counts.queued += 1
                return .start
            }
            if state.accepting && state.waiting.count < capacity {
                state.waiting.append(token)
                state.counts.queued += 1
                return .wait
            }
            state.counts.dropped += 1
            state.droppedSinceLog += 1
            let now = clock.now
            guard state.lastDropLog.map({ now - $0 >= Self.dropLogInterval }) ?? true else { return .drop(logCount: nil) }
            defer { state.lastDropLog = now; state.droppedSinceLog = 0 }
            return .drop(logCount: state.droppedSinceLog)
        }
        switch verdict {
        case .start:
            dispatchQueue.async { self.call(token) }
        case .wait:
            break
        case .drop(let logCount):
            if let logCount {
                logger.error(
                    "revocation dropped: queue full or closed, the token stays alive until it expires",
                    metadata: ["token": "\(token.fingerprint)", "dropped": "\(logCount)", "capacity": "\(capacity)"])
            }
        }
    }

    /// The counters now.
    public var counts: Counts {
        state.withLock { state in
            var counts = state.counts
            counts.waiting = state.waiting.count
            counts.inFlight = state.inFlight
            return counts
        }
    }

    /// Stops taking tokens and waits up to `timeout` for the waiting and running calls to end.
    /// What is left is counted as lost and logged. Returns the final counters.
    public func drain(timeout: Duration) -> Counts {
        let deadline = clock.now + timeout
        state.withLock { $0.accepting = false }
        while clock.now < deadline {
            let idle = state.withLock { $0.waiting.isEmpty && $0.inFlight == 0 }
            if idle { break }
            usleep(5_000)
        }
        state.withLock { state in
            // Calls still running are written off now; `finished` ignores them if they end later.
            state.counts.lost += state.waiting.count + state.inFlight
            state.waiting.removeAll()
            state.inFlight = 0
            state.drained = true
        }
        let counts = self.counts
        if counts.lost > 0 {
            logger.error("revocations lost at shutdown: their tokens stay alive until they expire", metadata: ["lost": "\(counts.lost)"])
        }
        return counts
    }

    private func call(_ token: AccessToken) {
        // The outcome is handled where it arrives (the HTTP client's event loop): a second hop
        // through the Dispatch queue cost two thread wake-ups per revocation for nothing.
        notifier.revoke(token) { outcome in self.finished(token, outcome) }
    }

    private func finished(_ token: AccessToken, _ outcome: RevocationOutcome) {
        let (counted, next) = state.withLock { state -> (Bool, AccessToken?) in
            // After `drain` gave up, this call was already counted and logged as lost (and is
            // most likely its cancellation): one verdict per token.
            guard !state.drained else { return (false, nil) }
            switch outcome {
            case .revoked: state.counts.revoked += 1
            case .rejected: state.counts.rejected += 1
            case .failed: state.counts.failed += 1
            }
            if let next = state.waiting.popFirst() { return (true, next) }
            state.inFlight -= 1
            return (true, nil)
        }
        if counted { log(outcome, for: token) }
        if let next { call(next) }
    }

    /// Metadata is an autoclosure: the fingerprint (a SHA-256) is only computed for lines the level lets through.
    private func log(_ outcome: RevocationOutcome, for token: AccessToken) {
        switch outcome {
        case .revoked(let status):
            logger.info("revocation revoked", metadata: ["token": "\(token.fingerprint)", "status": "\(status)"])
        case .rejected(let status):
            logger.notice(
                "revocation rejected by the backend", metadata: ["token": "\(token.fingerprint)", "status": "\(status)"])
        case .failed(let failure):
            logger.error(
                "revocation failed: the token may still be alive",
                metadata: ["token": "\(token.fingerprint)", "reason": "\(failure)"])
        }
    }
}
