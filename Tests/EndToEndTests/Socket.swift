import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Blocking sockets for the test clients, listeners and the notify socket; the one place a
/// `sockaddr` is built or cast. Every wait is bounded, so a broken server fails a test instead
/// of hanging it.
enum Socket {
    /// An IPv4 address and port.
    static func inet(_ host: String = "127.0.0.1", port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    /// A unix socket path.
    static func unix(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        return address
    }

    /// Calls `body` with `address` as the `sockaddr` pointer and length the socket calls take.
    static func withSockaddr<Address, Result>(
        _ address: inout Address, _ body: (UnsafeMutablePointer<sockaddr>, socklen_t) throws -> Result
    ) rethrows -> Result {
        try withUnsafeMutablePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<Address>.size)) }
        }
    }

    static func withSockaddr<Address, Result>(_ address: Address, _ body: (UnsafeMutablePointer<sockaddr>, socklen_t) throws -> Result)
        rethrows -> Result
    {
        var address = address
        return try withSockaddr(&address, body)
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freeTCPPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = inet(port: 0)
        let bound = withSockaddr(&address) { pointer, length in
            var length = length
            return bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
        guard bound else { throw HarnessError("no free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A listening stream socket bound to `address`, held by the test (as systemd holds one).
    static func listening<Address>(_ domain: Int32, on address: Address, label: String) throws -> Int32 {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, withSockaddr(address, { bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 4096) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw HarnessError("cannot listen on \(label): \(reason)")
        }
        return fd
    }

    /// A listening unix socket at `path` with mode 0666, so nginx's workers can connect.
    static func listeningUnix(at path: String) throws -> Int32 {
        let fd = try listening(AF_UNIX, on: unix(path), label: path)
        guard chmod(path, 0o666) == 0 else {
            close(fd)
            throw HarnessError("cannot chmod \(path)")
        }
        return fd
    }

    /// A unix datagram socket bound at `path`, as a service manager's `NOTIFY_SOCKET`.
    static func boundDatagram(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0, withSockaddr(unix(path), { bind(fd, $0, $1) }) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw HarnessError("cannot bind \(path): \(reason)")
        }
        return fd
    }

    static func connectTCP(host: String = "127.0.0.1", port: UInt16) throws -> Int32 {
        try connect(AF_INET, to: inet(host, port: port), label: "\(host):\(port)")
    }

    static func connectUnix(path: String) throws -> Int32 {
        try connect(AF_UNIX, to: unix(path), label: path)
    }

    private static func connect<Address>(_ domain: Int32, to address: Address, label: String) throws -> Int32 {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        guard withSockaddr(address, { Glibc.connect(fd, $0, $1) }) == 0 else {
            let code = errno
            close(fd)
            throw HarnessError("connect \(label): errno \(code)")
        }
        setTimeouts(fd)
        return fd
    }

    private static func setTimeouts(_ fd: Int32) {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw HarnessError("send: errno \(errno)") }
            offset += written
        }
    }

    static func readToEnd(_ fd: Int32) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return result }
            guard count > 0 else { throw HarnessError("recv: errno \(errno) after \(result.count) bytes") }
            result += buffer[..<count]
        }
    }

    /// One datagram, or nil when none arrives within `timeout`.
    static func receiveDatagram(_ fd: Int32, timeout: Duration) -> [UInt8]? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&entry, 1, milliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count >= 0 ? Array(buffer[..<count]) : nil
    }

    /// Closes with a TCP reset (SO_LINGER 0) instead of a FIN, as a client that gives up does.
    static func abort(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }
}
