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
    /// Sent in turn, one per request: one per cookie (or a single one).
    private let requests: [[UInt8]]
    private let nextRequest = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let tally = Mutex(Tally())
    private let group = DispatchGroup()

    init(port: UInt16, path: String = "/api/auth/logout", cookie: String?) {
        self.port = port
        requests = [RawHTTP.request("POST", path: path, cookies: cookie.map { [Array("crocante_session=\($0)".utf8)] } ?? [])]
    }

    /// Each request carries the next of `cookies`, in turn (distinct sessions under load).
    init(port: UInt16, path: String = "/api/auth/logout", cookies: [String]) {
        self.port = port
        requests = cookies.map { RawHTTP.request("POST", path: path, cookies: [Array("crocante_session=\($0)".utf8)]) }
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
        let request = requests[nextRequest.add(1, ordering: .relaxed).oldValue % requests.count]
        guard let answer = try? RawHTTP.exchange(port: port, request) else { return nil }
        // "HTTP/1.1 200 OK"
        let statusLine = answer.prefix { $0 != UInt8(ascii: "\r") }
        let fields = String(decoding: statusLine, as: UTF8.self).split(separator: " ")
        return fields.count >= 2 ? Int(fields[1]) : nil
    }
}
