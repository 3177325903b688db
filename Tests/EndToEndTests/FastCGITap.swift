import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A relay on a unix socket between a front end and the responder's socket that records each
/// connection's bytes both ways, so a test sees the FastCGI records a front end really sends
/// (HAProxy's `FCGI_GET_VALUES`, how many requests it puts on a connection) and what came back.
/// Threads only, stopped by ``stop()``.
final class FastCGITap: @unchecked Sendable {
    /// One connection from the front end: what it sent, what the responder sent back, and every
    /// whole record of either in the order the tap passed it on.
    struct Connection: Sendable {
        var sent: [UInt8] = []
        var answered: [UInt8] = []
        var timeline: [(fromFrontEnd: Bool, record: Record)] = []

        /// The most requests begun on the connection (`FCGI_BEGIN_REQUEST` sent) and not yet
        /// ended (`FCGI_END_REQUEST` back) at any moment: above 1 is multiplexing.
        var mostInFlight: Int {
            var inFlight = 0
            var most = 0
            for (fromFrontEnd, record) in timeline {
                if fromFrontEnd && record.type == 1 { inFlight += 1 }
                if !fromFrontEnd && record.type == 3 { inFlight -= 1 }
                most = max(most, inFlight)
            }
            return most
        }

        /// Adds `bytes` to one direction, and the records they complete to the timeline.
        mutating func add(_ bytes: [UInt8], fromFrontEnd: Bool) {
            let before = FastCGITap.records(fromFrontEnd ? sent : answered).count
            if fromFrontEnd { sent += bytes } else { answered += bytes }
            let after = FastCGITap.records(fromFrontEnd ? sent : answered)
            timeline += after[before...].map { (fromFrontEnd, $0) }
        }
    }

    /// One FastCGI record, as read from a stream.
    struct Record: Equatable, Sendable {
        let type: UInt8
        let requestID: UInt16
        let content: [UInt8]
        let bytes: [UInt8]
    }

    let path: String
    private let upstream: String
    private let listener: Int32
    private let state = Mutex<(connections: [Connection], sockets: Set<Int32>, stopped: Bool)>(([], [], false))

    /// Every connection so far, in the order accepted.
    var connections: [Connection] { state.withLock { $0.connections } }

    init(at path: String, to upstream: String) throws {
        self.path = path
        self.upstream = upstream
        listener = try Socket.listeningUnix(at: path)
        chmod(path, 0o666)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    func stop() {
        let sockets = state.withLock { state in
            state.stopped = true
            return state.sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    deinit {
        stop()
        close(listener)
    }

    /// The whole records in `bytes`, in order (a cut last one left out).
    static func records(_ bytes: [UInt8]) -> [Record] {
        var records: [Record] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let end = offset + 8 + length + Int(bytes[offset + 6])
            guard end <= bytes.count else { break }
            records.append(Record(
                type: bytes[offset + 1], requestID: UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3]),
                content: Array(bytes[(offset + 8)..<(offset + 8 + length)]), bytes: Array(bytes[offset..<end])))
            offset = end
        }
        return records
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            guard track(client) else { close(client); return }
            let index = state.withLock { state in
                state.connections.append(Connection())
                return state.connections.count - 1
            }
            Thread.detachNewThread { [self] in serve(client, index: index) }
        }
    }

    /// Remembers a socket to shut at ``stop()``; false once stopped.
    private func track(_ socket: Int32) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.sockets.insert(socket)
            return true
        }
    }

    private func serve(_ client: Int32, index: Int) {
        defer { close(client) }
        guard let server = try? Socket.connectUnix(path: upstream), track(server) else { return }
        defer { close(server) }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            relay(from: server, to: client) { state, bytes in state.connections[index].add(bytes, fromFrontEnd: false) }
            done.signal()
        }
        relay(from: client, to: server) { state, bytes in state.connections[index].add(bytes, fromFrontEnd: true) }
        done.wait()
    }

    /// Copies and records until end of stream or an error, then half-closes the other side.
    private func relay(
        from source: Int32, to destination: Int32,
        recording: (inout (connections: [Connection], sockets: Set<Int32>, stopped: Bool), [UInt8]) -> Void
    ) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            let bytes = Array(buffer[..<count])
            state.withLock { recording(&$0, bytes) }
            guard (try? Socket.writeAll(destination, bytes)) != nil else { break }
        }
        shutdown(destination, Int32(SHUT_WR))
    }
}
