import Logging
import Synchronization

/// Connections closed without being served, by reason, for the status page; each reason is also
/// logged at most once a second, with how many happened since its last line, so that a flood
/// cannot flood the journal.
public final class RefusalCounters: Sendable {
    /// Peers the allowlist refused (`CROCANTE_ALLOWED_CLIENTS`, `CROCANTE_ALLOWED_PEERS`).
    public let peersRefused = Atomic<Int>(0)
    /// Requests the record validator refused (lengths, record types, version, ids).
    public let invalidRequests = Atomic<Int>(0)
    /// Requests for a role other than responder, answered `FCGI_UNKNOWN_ROLE`.
    public let unknownRoles = Atomic<Int>(0)
    /// Connections whose params were not complete within `CROCANTE_REQUEST_TIMEOUT_MS`.
    public let timedOut = Atomic<Int>(0)
    /// Connections closed by the peer before their params were complete.
    public let closedEarly = Atomic<Int>(0)

    private let peerLine = OncePerSecond()
    private let invalidLine = OncePerSecond()
    private let timeoutLine = OncePerSecond()

    public init() {}

    func record(_ refusal: ConnectionGate.Refusal, logger: Logger) {
        switch refusal {
        case .peer(let peer):
            peersRefused.add(1, ordering: .relaxed)
            peerLine.log(logger, level: .warning, "connection refused: peer not in the allowlist", ["peer": "\(peer)"])
        case .invalid(let rejection):
            if case .unknownRole = rejection {
                unknownRoles.add(1, ordering: .relaxed)
            } else {
                invalidRequests.add(1, ordering: .relaxed)
            }
            invalidLine.log(
                logger, level: .warning, "connection closed: invalid FastCGI request",
                ["reason": "\(rejection.name)", "detail": "\(rejection)"])
        case .timedOut:
            timedOut.add(1, ordering: .relaxed)
            timeoutLine.log(logger, level: .warning, "connection closed: request not complete within CROCANTE_REQUEST_TIMEOUT_MS", [:])
        case .closed:
            // Clients that give up are ordinary; counted, logged only at debug.
            closedEarly.add(1, ordering: .relaxed)
            logger.debug("connection closed by the peer before its request was complete")
        case .onlyManagement:
            // Answered, not refused: not counted.
            logger.debug("connection closed by the peer after management records only")
        }
    }
}

/// Lets one line through per second and counts the ones held back.
final class OncePerSecond: Sendable {
    private let lastSecond = Atomic<Int64>(Int64.min)
    private let heldBack = Atomic<Int>(0)
    private static let origin = ContinuousClock.now

    func log(_ logger: Logger, level: Logger.Level, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        let second = (ContinuousClock.now - Self.origin).components.seconds
        let last = lastSecond.load(ordering: .relaxed)
        guard second != last, lastSecond.compareExchange(expected: last, desired: second, ordering: .relaxed).exchanged else {
            heldBack.add(1, ordering: .relaxed)
            return
        }
        var metadata = metadata
        metadata["since_last_line"] = "\(heldBack.exchange(0, ordering: .relaxed) + 1)"
        logger.log(level: level, message, metadata: metadata)
    }
}
