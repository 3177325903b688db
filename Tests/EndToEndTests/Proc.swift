#if canImport(Glibc)
import Glibc
#endif

/// Connection counts from /proc, to show what a process holds open.
enum Proc {
    /// The whole of a /proc file: it reports size 0 and hands out one page per read.
    static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            result += buffer[..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Established TCP connections (IPv4 and IPv6) whose remote end is 127.0.0.1/::1 `port`.
    static func establishedConnections(toPort port: UInt16) -> Int {
        ["/proc/net/tcp", "/proc/net/tcp6"].reduce(0) { total, file in
            let text = read(file)
            return total
                + text.split(separator: "\n").dropFirst().filter { line in
                    let fields = line.split(separator: " ")
                    guard fields.count > 3, let remotePort = fields[2].split(separator: ":").last.flatMap({ UInt16($0, radix: 16) })
                    else { return false }
                    return remotePort == port && fields[3] == "01"
                }.count
        }
    }

    /// Connected sockets on the listening unix socket `path` (its accepted ends).
    static func connectedUnixSockets(path: String) -> Int {
        let text = read("/proc/net/unix")
        return text.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count >= 8 && fields[7] == path && fields[5] == "03"
        }.count
    }
}
