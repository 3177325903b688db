import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// Decides, before libfcgi reads a byte, whether an accepted connection is served: the peer
/// must be allowed (``ConnectionAllowlist``) and its request's params must be complete and
/// valid (``FastCGIRecordValidator``) before the deadline, however slowly it sends them.
///
/// It only peeks (`recv(MSG_PEEK)`, polled until the deadline): what it admits, libfcgi then
/// reads from the socket itself, and finds complete, so it never blocks on a peer either. The one
/// exception is a management record before the request (HAProxy's `FCGI_GET_VALUES`): the gate
/// reads it off the socket and answers it itself, so libfcgi finds the begin record first.
public struct ConnectionGate: Sendable {
    public let allowlist: ConnectionAllowlist
    public let limits: FastCGIRecordValidator.Limits
    /// From accept to complete params.
    public let requestTimeout: Duration

    public init(allowlist: ConnectionAllowlist, requestTimeout: Duration, limits: FastCGIRecordValidator.Limits = .standard) {
        self.allowlist = allowlist
        self.requestTimeout = requestTimeout
        self.limits = limits
    }

    /// Why a connection was closed unserved.
    enum Refusal: Sendable, Equatable {
        /// The allowlist refused the peer (described without secrets: an address or ids).
        case peer(String)
        case invalid(FastCGIRecordValidator.Rejection)
        /// The params were not complete within the request timeout.
        case timedOut
        /// The peer closed or reset the connection before its params were complete.
        case closed
        /// The peer sent only management records, had them all answered, and closed: what a
        /// client asking `FCGI_GET_VALUES` on a connection of its own does. Nothing was refused.
        case onlyManagement
    }

    /// Nil when the connection may be handed to libfcgi; else why not (the caller closes it).
    /// For a role other than responder it has already answered `FCGI_UNKNOWN_ROLE`.
    /// `peerChecked`: a kept connection, whose peer passed the allowlist when it was accepted.
    func admit(_ connection: Int32, deadline: ContinuousClock.Instant, peerChecked: Bool = false) -> Refusal? {
        if allowlist.isRestricted, !peerChecked, let refusal = checkPeer(connection) { return refusal }
        let capacity = limits.paramsBytes + limits.framingBytes + 16
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var validator = FastCGIRecordValidator(limits: limits)
            var seen = 0
            var events: Int16 = 0
            var answeredManagement = false
            let clock = ContinuousClock()
            // Peek first: nginx has usually sent the whole request by the time it is accepted,
            // so the common case costs one recv and no poll.
            while true {
                let peeked: Int
                do throws(SystemError) {
                    peeked = try systemCall("recv(MSG_PEEK)", retryingOnInterrupt: true) {
                        recv(connection, buffer.baseAddress, capacity, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
                    }
                    if peeked == 0 { return answeredManagement ? .onlyManagement : .closed }
                } catch where error.code == EAGAIN || error.code == EWOULDBLOCK {
                    peeked = seen
                } catch {
                    return .closed
                }
                if peeked > seen {
                    seen = peeked
                    switch validator.advance(over: UnsafeBufferPointer(rebasing: buffer[..<peeked])) {
                    case .complete:
                        return nil
                    case .reject(let rejection):
                        if case .unknownRole(_, let requestID) = rejection { answerUnknownRole(connection, requestID: requestID) }
                        return .invalid(rejection)
                    case .management(let answer, let byteCount):
                        guard consume(byteCount, of: connection, into: buffer), answerManagement(connection, with: answer) else {
                            return .closed
                        }
                        answeredManagement = true
                        // What the peer sent next may be here already: peek again at once.
                        seen = 0
                        events = 0
                        continue
                    case .needMore:
                        break
                    }
                } else if events & (pollReadHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                    return .closed  // half-closed without completing: nothing more will come
                } else if events != 0 {
                    // Readable with nothing new: the unread bytes keep poll readable; wait a little.
                    sleepThread(for: min(deadline - clock.now, peekInterval))
                }
                let remaining = deadline - clock.now
                guard remaining > .zero else { return .timedOut }
                guard let ready = try? pollReadable(connection, within: remaining) else { return .closed }
                events = ready
            }
        }
    }

    /// Reads `count` bytes the gate has peeked, and so are there, off the connection.
    private func consume(_ count: Int, of connection: Int32, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        var consumed = 0
        while consumed < count {
            let read = try? systemCall("recv", retryingOnInterrupt: true) {
                recv(connection, buffer.baseAddress, count - consumed, Int32(MSG_DONTWAIT))
            }
            guard let read, read > 0 else { return false }
            consumed += read
        }
        return true
    }

    /// A management record's answer, whole or not at all (a part would break the record stream);
    /// never blocks: eight answers of at most 64 bytes, before anything else is sent on the
    /// connection, are far below any socket's send buffer.
    private func answerManagement(_ connection: Int32, with answer: [UInt8]) -> Bool {
        let sent = try? systemCall("send") {
            answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
        }
        return sent == answer.count
    }

    /// `FCGI_END_REQUEST` with `FCGI_UNKNOWN_ROLE`, as the specification asks; never blocks.
    private func answerUnknownRole(_ connection: Int32, requestID: UInt16) {
        let record = FastCGIRecordValidator.unknownRoleRecord(requestID: requestID)
        _ = try? systemCall("send") {
            record.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
        }
        // Unread input at close makes TCP send a reset, which can destroy the answer before the
        // peer reads it: read what is there (briefly) first.
        lingeringShutdown(connection, within: .milliseconds(200))
    }

    /// The peer's address (TCP) or credentials (unix, `SO_PEERCRED`) against the allowlist.
    private func checkPeer(_ connection: Int32) -> Refusal? {
        guard let peer = try? SocketAddress.peer(of: connection) else { return .closed }
        switch peer {
        case .unix(let uid, let gid):
            return allowlist.allows(uid: uid, gid: gid) ? nil : .peer("uid \(uid) gid \(gid)")
        case .ip(let address):
            return allowlist.allows(address: address) ? nil : .peer(Self.printable(address))
        case .other(let family):
            return .peer("address family \(family)")
        }
    }

    private static func printable(_ address: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = address.withUnsafeBytes { inet_ntop(address.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// `POLLRDHUP` (Linux, `_GNU_SOURCE`, so not in Glibc's Swift module): the peer shut down its writing side.
let pollReadHangUp: Int16 = 0x2000


/// How long the gate waits between two peeks that found nothing new (bytes already seen keep a
/// socket readable); nginx sends a request at once, so only slow peers ever wait.
private let peekInterval = Duration.milliseconds(10)

/// Shuts down writing and reads what the peer still sends until it closes, `limit` at most, so
/// that unread input does not make the kernel reset the connection before the peer has the
/// answer. libfcgi's own version restarts its timeout on every byte; this one is bounded in all.
func lingeringShutdown(_ connection: Int32, within limit: Duration) {
    guard (try? systemCall("shutdown", { shutdown(connection, Int32(SHUT_WR)) })) != nil else { return }
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    // On the stack and never zeroed: a closing connection lingers after every request, and a
    // zeroed 4 KiB array was a tenth of a request's instructions.
    withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { trash in
        while case let remaining = deadline - clock.now, remaining > .zero {
            guard waitReadable(connection, within: remaining) else { return }
            let count = try? systemCall("recv", retryingOnInterrupt: true) {
                recv(connection, trash.baseAddress, trash.count, Int32(MSG_DONTWAIT))
            }
            guard let count, count > 0 else { return }  // EOF, reset or nothing after all
        }
    }
}

/// `poll` for input on one descriptor for at most `duration`: the events, 0 when none came.
func pollReadable(_ fd: Int32, within duration: Duration) throws(SystemError) -> Int16 {
    var entry = pollfd(fd: fd, events: Int16(POLLIN) | pollReadHangUp, revents: 0)
    let ready = try systemCall("poll", retryingOnInterrupt: true) {
        poll(&entry, 1, Int32(clamping: max(1, duration.roundedUpMilliseconds)))
    }
    return ready == 0 ? 0 : entry.revents
}

/// `poll` for input on two descriptors at once for at most `duration` (a negative `second` is
/// ignored, as poll does): each one's events, 0 when none came.
func pollBoth(_ first: Int32, _ second: Int32, within duration: Duration) -> (Int16, Int16) {
    // On the stack: a kept connection looks after every request.
    withUnsafeTemporaryAllocation(of: pollfd.self, capacity: 2) { entries in
        entries[0] = pollfd(fd: first, events: Int16(POLLIN) | pollReadHangUp, revents: 0)
        entries[1] = pollfd(fd: second, events: Int16(POLLIN), revents: 0)
        let ready = try? systemCall("poll", retryingOnInterrupt: true) {
            poll(entries.baseAddress, 2, Int32(clamping: duration.roundedUpMilliseconds))
        }
        guard let ready, ready > 0 else { return (0, 0) }
        return (entries[0].revents, entries[1].revents)
    }
}

/// Whether unread bytes wait on `fd` (one peeked, never blocking): a half-closed connection
/// with none is at its end.
func hasInput(_ fd: Int32) -> Bool {
    var byte: UInt8 = 0
    return recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) > 0
}

/// `O_NONBLOCK` on a connection just accepted.
func setNonBlocking(accepted fd: Int32) throws(SystemError) {
    // A socket fresh from accept() has no other status flag (accept does not inherit the
    // listener's), so one F_SETFL does it, without the F_GETFL a general version needs.
    try systemCall("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, O_NONBLOCK) }
}

/// Whether `fd` has input (or EOF) within `duration`.
func waitReadable(_ fd: Int32, within duration: Duration) -> Bool {
    ((try? pollReadable(fd, within: duration)) ?? 0) != 0
}

extension Duration {
    /// Whole milliseconds, rounded up, for `poll`.
    var roundedUpMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
