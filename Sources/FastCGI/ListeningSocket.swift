import SystemCalls

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
    private let ownedFile: FileIdentity?
    /// Human-readable address, for logs.
    public let address: String

    /// How long an idle `accept` blocks before the worker looks at the stop flag again.
    static let acceptPollInterval = Duration.milliseconds(250)

    private init(descriptor: Int32, isOwned: Bool, address: String, ownedFile: FileIdentity? = nil) throws(SystemError) {
        self.descriptor = descriptor
        self.isOwned = isOwned
        self.ownedFile = ownedFile
        self.address = address
        try setReceiveTimeout(descriptor, Self.acceptPollInterval)
    }

    /// Creates a socket bound to `address` (a unix path, or exactly one IP address: never "all
    /// interfaces" by accident). A unix socket gets permissions `mode`, with no umask window,
    /// and replaces a stale socket file but never one a live process accepts on.
    public static func bound(to address: SocketAddress, mode: UInt32, backlog: Int32 = SOMAXCONN) throws(SystemError) -> ListeningSocket {
        if case .unix(let path) = address { try removeStaleSocket(at: path) }
        let fd = try systemCall("socket") { socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do throws(SystemError) {
            var on: Int32 = 1
            switch address {
            case .unix(let path):
                // Bind with no permissions, then chmod: no window where the umask decides who connects.
                let previousMask = umask(0o777)
                defer { umask(previousMask) }
                try address.withSockaddr { pointer, length throws(SystemError) in try systemCall("bind(\(path))") { bind(fd, pointer, length) } }
                try systemCall("chmod(\(path))") { chmod(path, mode_t(mode)) }
            case .ipv4, .ipv6:
                try systemCall("setsockopt(SO_REUSEADDR)") { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) }
                if address.family == AF_INET6 {
                    try systemCall("setsockopt(IPV6_V6ONLY)") {
                        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
                    }
                }
                try address.withSockaddr { pointer, length throws(SystemError) in
                    try systemCall("bind(\(address))") { bind(fd, pointer, length) }
                }
            }
            try systemCall("listen") { listen(fd, backlog) }
            var ownedFile: FileIdentity?
            if case .unix(let path) = address { ownedFile = FileIdentity(path: path) }
            return try ListeningSocket(descriptor: fd, isOwned: true, address: address.description, ownedFile: ownedFile)
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
    private static func removeStaleSocket(at path: String) throws(SystemError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError(operation: "\(path) exists and is not a socket", code: EEXIST)
        }
        let probe = try systemCall("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { close(probe) }
        let connected = try SocketAddress.unix(path: path).withSockaddr { connect(probe, $0, $1) }
        guard connected != 0 else { throw SystemError(operation: "\(path) is in use by a running process", code: EADDRINUSE) }
        try systemCall("unlink(\(path))") { unlink(path) }
    }

    /// Accepts one connection. Nil when the poll interval passed with none, or the peer gave up
    /// before it was accepted.
    func accept() throws(SystemError) -> Int32? {
        do {
            // Plain accept(): accept4 is not in Glibc's module, and this process never execs.
            return try systemCall("accept") { Glibc.accept(descriptor, nil, nil) }
        } catch where [EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO].contains(error.code) {
            return nil
        }
    }

    /// After an `accept` that found nothing: when the socket is non-blocking (a process keeping
    /// connections shares it), waits up to the poll interval for a connection, rather than spin.
    func awaitConnectionIfNonBlocking() {
        guard fcntl(descriptor, F_GETFL) & O_NONBLOCK != 0 else { return }
        _ = waitReadable(descriptor, within: Self.acceptPollInterval)
    }

    /// Whether a connection is waiting in the backlog right now.
    func hasPendingConnection() -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && (entry.revents & Int16(POLLIN)) != 0
    }

    /// Stops new connections from arriving at a socket this process created: a unix socket's
    /// path is unlinked (what is already in the backlog can still be accepted).
    func stopArrivals() {
        guard let ownedFile, FileIdentity(path: ownedFile.path) == ownedFile else { return }
        unlink(ownedFile.path)
    }

    /// Closes a socket this process created; an inherited one stays open for its owner.
    func closeIfOwned() {
        if isOwned { close(descriptor) }
    }
}

/// A path with its device and inode, to tell our socket file from a successor's at the same path.
private struct FileIdentity: Sendable, Equatable {
    let path: String
    let device: dev_t
    let inode: ino_t

    init?(path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        self.path = path
        device = status.st_dev
        inode = status.st_ino
    }
}

/// Sets how long a read (or an `accept`) on `fd` may block (`SO_RCVTIMEO`).
func setReceiveTimeout(_ fd: Int32, _ duration: Duration) throws(SystemError) {
    var timeout = timeval(duration)
    try systemCall("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) }
}
