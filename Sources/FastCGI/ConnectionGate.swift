#if canImport(Glibc)
import Glibc
#endif

/// Decides, before libfcgi reads a byte, whether an accepted connection is served: the peer
/// must be allowed (``ConnectionAllowlist``) and its request's params must be complete and
/// valid (``FastCGIRecordValidator``) before the deadline, however slowly it sends them.
///
/// It only peeks (`recv(MSG_PEEK)`, polled until the deadline): what it admits, libfcgi then
/// reads from the socket itself, and finds complete, so it never blocks on a peer either.
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
    }

    /// Nil when the connection may be handed to libfcgi; else why not (the caller closes it).
    /// For a role other than responder it has already answered `FCGI_UNKNOWN_ROLE`.
    func admit(_ connection: Int32, deadline: ContinuousClock.Instant) -> Refusal? {
        if allowlist.isRestricted, let refusal = checkPeer(connection) { return refusal }
        let capacity = limits.paramsBytes + limits.framingBytes + 16
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var validator = FastCGIRecordValidator(limits: limits)
            var seen = 0
            let clock = ContinuousClock()
            while true {
                let remaining = deadline - clock.now
                guard remaining > .zero else { return .timedOut }
                var entry = pollfd(fd: connection, events: Int16(POLLIN) | pollReadHangUp, revents: 0)
                let ready = poll(&entry, 1, Int32(clamping: max(1, remaining.wholeMilliseconds)))
                if ready < 0 {
                    if errno == EINTR { continue }
                    return .closed
                }
                if ready == 0 { continue }  // the loop's deadline check decides
                let count = recv(connection, buffer.baseAddress, capacity, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return .closed
                }
                if count == 0 { return .closed }
                let grew = count > seen
                seen = count
                switch validator.advance(over: UnsafeBufferPointer(rebasing: buffer[..<count])) {
                case .complete:
                    return nil
                case .reject(let rejection):
                    if case .unknownRole(_, let requestID) = rejection { answerUnknownRole(connection, requestID: requestID) }
                    return .invalid(rejection)
                case .needMore:
                    // Readable with nothing new means the peer has half-closed: it will send no more.
                    if !grew, entry.revents & (pollReadHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0 { return .closed }
                }
            }
        }
    }

    /// `FCGI_END_REQUEST` with `FCGI_UNKNOWN_ROLE`, as the specification asks; never blocks.
    private func answerUnknownRole(_ connection: Int32, requestID: UInt16) {
        let record = FastCGIRecordValidator.unknownRoleRecord(requestID: requestID)
        _ = record.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }

    /// The peer's address (TCP, `getpeername`) or credentials (unix, `SO_PEERCRED`) against the allowlist.
    private func checkPeer(_ connection: Int32) -> Refusal? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(connection, $0, &length) }
        }
        guard named == 0 else { return .closed }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            var credentials = PeerCredentials()
            var size = socklen_t(MemoryLayout<PeerCredentials>.size)
            guard getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &credentials, &size) == 0 else { return .closed }
            return allowlist.allows(uid: credentials.uid, gid: credentials.gid)
                ? nil : .peer("uid \(credentials.uid) gid \(credentials.gid)")
        case AF_INET:
            let address = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
            }
            return allowlist.allows(address: address) ? nil : .peer(Self.printable(address))
        case AF_INET6:
            let address = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            }
            return allowlist.allows(address: address) ? nil : .peer(Self.printable(address))
        default:
            return .peer("address family \(storage.ss_family)")
        }
    }

    private static func printable(_ address: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = address.withUnsafeBytes { inet_ntop(address.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// `POLLRDHUP` (Linux, `_GNU_SOURCE`, so not in Glibc's Swift module): the peer shut down its writing side.
private let pollReadHangUp: Int16 = 0x2000

/// `struct ucred` (Linux, `_GNU_SOURCE`), what `SO_PEERCRED` fills in.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}

extension Duration {
    /// Whole milliseconds, rounded up, for `poll`.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
