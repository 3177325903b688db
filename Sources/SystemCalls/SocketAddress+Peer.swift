#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// Who is at the other end of a connected socket, for an allowlist.
    public enum Peer: Sendable, Equatable {
        /// A unix socket peer's credentials as the kernel recorded them at connect (`SO_PEERCRED`).
        case unix(uid: UInt32, gid: UInt32)
        /// A TCP peer's address: 4 bytes (IPv4) or 16 (IPv6).
        case ip([UInt8])
        /// Another address family.
        case other(family: Int32)
    }

    /// The peer of `connection` (`getpeername`, then `SO_PEERCRED` for a unix socket).
    public static func peer(of connection: Int32) throws(SystemError) -> Peer {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemError) in
                try systemCall("getpeername") { getpeername(connection, address, &length) }
            }
        }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            var credentials = PeerCredentials()
            var size = socklen_t(MemoryLayout<PeerCredentials>.size)
            try systemCall("getsockopt(SO_PEERCRED)") { getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &credentials, &size) }
            return .unix(uid: credentials.uid, gid: credentials.gid)
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .ip(withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) }) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { .ip(withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) }) }
            }
        case let family:
            return .other(family: family)
        }
    }
}

/// `struct ucred` (Linux, `_GNU_SOURCE`, so not in Glibc's Swift module): what `SO_PEERCRED` fills in.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
