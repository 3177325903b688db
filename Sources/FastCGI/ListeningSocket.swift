#if canImport(Glibc)
import Glibc
#endif

/// The socket nginx connects to: created here (unix or TCP) or inherited from the parent.
///
/// `FCGX_OpenSocket` is avoided on purpose: it exits the process when bind fails, binds every
/// interface for `:port`, has no IPv6 and leaves unix socket permissions to the umask.
public final class ListeningSocket: Sendable {
    public let descriptor: Int32
    /// Whether this process created the socket (and so may close and unlink it) or inherited it.
    public let isOwned: Bool
    /// The unix socket file this process created (path, device, inode), unlinked at stop
    /// only while it is still ours and not a successor's.
    private let ownedFile: (path: String, device: dev_t, inode: ino_t)?
    /// Human-readable address, for logs.
    public let address: String

    /// How long an idle `accept` blocks before the worker looks at the stop flag again.
    static let acceptPollInterval = timeval(tv_sec: 0, tv_usec: 250_000)

    private init(
        descriptor: Int32, isOwned: Bool, address: String, ownedFile: (path: String, device: dev_t, inode: ino_t)? = nil
    ) throws(SystemError) {
        self.descriptor = descriptor
        self.isOwned = isOwned
        self.ownedFile = ownedFile
        self.address = address
        var timeout = Self.acceptPollInterval
        try check("setsockopt(SO_RCVTIMEO)", setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)))
    }

    /// Creates a unix socket at `path`, replacing a stale socket file, with permissions `mode`.
    public static func unix(path: String, mode: UInt32, backlog: Int32 = SOMAXCONN) throws(SystemError) -> ListeningSocket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemError(operation: "unix socket path", code: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }

        try removeStaleSocket(at: path, address: address)
        let fd = try check("socket(AF_UNIX)", socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        do throws(SystemError) {
            // Bind with no permissions, then chmod: no window where the umask decides who connects.
            let previousMask = umask(0o777)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            umask(previousMask)
            try check("bind(\(path))", bound)
            try check("chmod(\(path))", chmod(path, mode_t(mode)))
            try check("listen", listen(fd, backlog))
            let file = identity(of: path).map { (path: path, device: $0.0, inode: $0.1) }
            return try ListeningSocket(descriptor: fd, isOwned: true, address: "unix:\(path)", ownedFile: file)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Creates a TCP socket bound to exactly `host` (an IPv4 or IPv6 literal) and `port`.
    public static func tcp(host: String, port: UInt16, backlog: Int32 = SOMAXCONN) throws(SystemError) -> ListeningSocket {
        let isIPv6 = host.contains(":")
        let family = isIPv6 ? AF_INET6 : AF_INET
        let fd = try check("socket", socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        do throws(SystemError) {
            var on: Int32 = 1
            try check("setsockopt(SO_REUSEADDR)", setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)))
            let bound: Int32
            if isIPv6 {
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = port.bigEndian
                guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { throw SystemError(operation: "inet_pton(\(host))", code: EINVAL) }
                try check("setsockopt(IPV6_V6ONLY)", setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)))
                bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                }
            } else {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw SystemError(operation: "inet_pton(\(host))", code: EINVAL) }
                bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            try check("bind", bound)
            try check("listen", listen(fd, backlog))
            let printable = isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
            return try ListeningSocket(descriptor: fd, isOwned: true, address: printable)
        } catch {
            close(fd)
            throw error
        }
    }

    /// The socket the parent handed over, if any: systemd's first `LISTEN_FDS` descriptor (fd 3)
    /// when `LISTEN_PID` is this process, else fd 0 when it is a listening socket (spawn-fcgi,
    /// `StandardInput=socket`).
    public static func inherited(environment: [String: String]) throws(SystemError) -> ListeningSocket? {
        if let count = environment["LISTEN_FDS"].flatMap({ Int32($0) }), count >= 1,
            environment["LISTEN_PID"].flatMap({ pid_t($0) }) == getpid()
        {
            let fd: Int32 = 3  // SD_LISTEN_FDS_START
            guard isListeningSocket(fd) else { throw SystemError(operation: "LISTEN_FDS fd 3 is not a listening socket", code: ENOTSOCK) }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return try ListeningSocket(descriptor: fd, isOwned: false, address: "systemd fd 3")
        }
        if isListeningSocket(0) {
            return try ListeningSocket(descriptor: 0, isOwned: false, address: "inherited fd 0")
        }
        return nil
    }

    private static func isListeningSocket(_ fd: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0
    }

    /// Removes a socket file left by a process that died; refuses to remove anything else,
    /// including a socket some live process still accepts on.
    private static func removeStaleSocket(at path: String, address: sockaddr_un) throws(SystemError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError(operation: "\(path) exists and is not a socket", code: EEXIST)
        }
        let probe = try check("socket(AF_UNIX)", socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        defer { close(probe) }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected != 0 else { throw SystemError(operation: "\(path) is in use by a running process", code: EADDRINUSE) }
        try check("unlink(\(path))", unlink(path))
    }

    /// The device and inode of a path, to tell our socket file from a successor's.
    private static func identity(of path: String) -> (dev_t, ino_t)? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return (status.st_dev, status.st_ino)
    }

    /// Accepts one connection (`accept4`). Nil when the poll interval passed with none.
    func accept() throws(SystemError) -> Int32? {
        // Plain accept(): accept4 is not in Glibc's module, and this process never execs.
        let fd = Glibc.accept(descriptor, nil, nil)
        if fd >= 0 { return fd }
        switch errno {
        case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
            return nil
        default:
            throw SystemError(operation: "accept", code: errno)
        }
    }

    /// Whether a connection is waiting in the backlog right now.
    func hasPendingConnection() -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && (entry.revents & Int16(POLLIN)) != 0
    }

    /// Stops new connections from arriving at a socket this process created: a unix socket's
    /// path is unlinked (what is already in the backlog can still be accepted).
    func stopArrivals() {
        guard let ownedFile, let current = Self.identity(of: ownedFile.path),
            current == (ownedFile.device, ownedFile.inode)
        else { return }
        unlink(ownedFile.path)
    }

    /// Closes a socket this process created; an inherited one stays open for its owner.
    func closeIfOwned() {
        if isOwned { close(descriptor) }
    }
}
