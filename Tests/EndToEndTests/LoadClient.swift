import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Concurrent HTTP/1.1 clients for loopback load in tests: each thread sends one request per
/// connection, reads the whole answer and counts its status, until told to stop.
final class LoadClient: Sendable {
    struct Tally: Sendable, Equatable {
        var statuses: [Int: Int] = [:]
        var socketErrors = 0
        var total: Int { statuses.values.reduce(0, +) }
    }

    private let port: UInt16
    private let request: [UInt8]
    private let stopping = Atomic<Bool>(false)
    private let tally = Mutex(Tally())
    private let group = DispatchGroup()

    init(port: UInt16, path: String = "/api/auth/logout", cookie: String?) {
        self.port = port
        var text = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
        if let cookie { text += "Cookie: crocante_session=\(cookie)\r\n" }
        request = Array((text + "\r\n").utf8)
    }

    /// Starts `connections` client threads.
    func start(connections: Int) {
        for _ in 0..<connections {
            group.enter()
            Thread.detachNewThread { [self] in
                while !stopping.load(ordering: .relaxed) { once() }
                group.leave()
            }
        }
    }

    /// Stops the clients, waits for their last requests, and returns what they saw.
    func stop() -> Tally {
        stopping.store(true, ordering: .relaxed)
        group.wait()
        return tally.withLock { $0 }
    }

    /// What has been seen so far.
    var current: Tally { tally.withLock { $0 } }

    private func once() {
        guard let status = exchange() else {
            tally.withLock { $0.socketErrors += 1 }
            return
        }
        tally.withLock { $0.statuses[status, default: 0] += 1 }
    }

    /// One request on a fresh connection; the status code, or nil on any socket error.
    private func exchange() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return nil }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { return nil }
            answer += buffer[..<count]
        }
        // "HTTP/1.1 200 OK"
        let statusLine = answer.prefix { $0 != UInt8(ascii: "\r") }
        let fields = String(decoding: statusLine, as: UTF8.self).split(separator: " ")
        return fields.count >= 2 ? Int(fields[1]) : nil
    }
}
