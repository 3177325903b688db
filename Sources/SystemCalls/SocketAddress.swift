#if canImport(Glibc)
import Glibc
#endif

/// An address a socket binds, connects or sends to; the only place that builds a `sockaddr`
/// or casts a pointer to one.
public enum SocketAddress: Sendable, Equatable, CustomStringConvertible {
    /// A unix socket path; a leading `@` names one in the abstract namespace (as systemd writes it).
    case unix(path: String)
    /// An IPv4 literal and port.
    case ipv4(host: String, port: UInt16)
    /// An IPv6 literal (without brackets) and port.
    case ipv6(host: String, port: UInt16)

    /// `sockaddr_un.sun_path` holds 108 bytes, the terminating NUL included.
    public static let maximumUnixPathLength = 107

    /// An IP address literal (v6 when it holds a `:`) with a port; nil for anything else,
    /// host names included: nothing here resolves names.
    public init?(ipLiteral host: String, port: UInt16) {
        let version6 = host.contains(":")
        guard Self.isIPLiteral(host, version6: version6) else { return nil }
        self = version6 ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
    }

    /// Whether `host` is an IPv4 (or, with `version6`, IPv6) literal (`inet_pton`).
    public static func isIPLiteral(_ host: String, version6: Bool) -> Bool {
        var buffer = in6_addr()
        return inet_pton(version6 ? AF_INET6 : AF_INET, host, &buffer) == 1
    }

    /// The address family, for `socket(2)`.
    public var family: Int32 {
        switch self {
        case .unix: return AF_UNIX
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .ipv4(let host, let port): return "\(host):\(port)"
        case .ipv6(let host, let port): return "[\(host)]:\(port)"
        }
    }

    /// Calls `body` with the C address and its length. Fails for a unix path that does not fit.
    @discardableResult
    public func withSockaddr<Result>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> Result
    ) throws(SystemError) -> Result {
        switch self {
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(path.utf8)
            guard bytes.count <= Self.maximumUnixPathLength, !bytes.dropFirst().contains(0) else {
                throw SystemError(operation: "unix socket path", code: ENAMETOOLONG)
            }
            let abstract = bytes.first == UInt8(ascii: "@")
            if abstract { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            // An abstract name's length is exact; a path's includes its terminating NUL.
            let length = MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1)
            return try Self.cast(&address, length: length, body)
        case .ipv4(let host, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                throw SystemError(operation: "inet_pton(\(host))", code: EINVAL)
            }
            return try Self.cast(&address, length: MemoryLayout<sockaddr_in>.size, body)
        case .ipv6(let host, let port):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                throw SystemError(operation: "inet_pton(\(host))", code: EINVAL)
            }
            return try Self.cast(&address, length: MemoryLayout<sockaddr_in6>.size, body)
        }
    }

    private static func cast<Address, Result>(
        _ address: inout Address, length: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> Result
    ) throws(SystemError) -> Result {
        try withUnsafePointer(to: &address) { (pointer) throws(SystemError) -> Result in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemError) -> Result in
                try body(address, socklen_t(length))
            }
        }
    }
}
