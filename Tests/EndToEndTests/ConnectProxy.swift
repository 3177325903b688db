import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An egress proxy stand-in: accepts `CONNECT 127.0.0.1:port` on a loopback port, answers 200
/// and relays bytes both ways; any other request or target gets 403. Records each target, so a
/// test sees that the call went through it. Loopback only, threads only, stopped by ``stop()``.
final class ConnectProxy: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let state = Mutex<(targets: [String], sockets: Set<Int32>, stopped: Bool)>(([], [], false))

    /// Every `CONNECT` target asked for, in order.
    var targets: [String] { state.withLock { $0.targets } }

    init() throws {
        port = try Socket.freeTCPPort()
        listener = try Socket.listening(AF_INET, on: Socket.inet(port: port), label: "proxy")
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

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            guard track(client) else { close(client); return }
            Thread.detachNewThread { [self] in serve(client) }
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

    private func serve(_ client: Int32) {
        defer { close(client) }
        // The request head, byte by byte: nothing after it may be swallowed (the TLS hello follows).
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while head.count < 8192, !head.ends(with: Array("\r\n\r\n".utf8)) {
            guard recv(client, &byte, 1, 0) == 1 else { return }
            head.append(byte)
        }
        let requestLine = String(decoding: head, as: UTF8.self).split(separator: "\r\n").first ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[0] == "CONNECT", let colon = parts[1].lastIndex(of: ":"),
            ["127.0.0.1", "localhost"].contains(parts[1][..<colon]), let port = UInt16(parts[1][parts[1].index(after: colon)...])
        else {
            try? Socket.writeAll(client, Array("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".utf8))
            return
        }
        state.withLock { $0.targets.append(String(parts[1])) }
        guard let upstream = try? Socket.connectTCP(port: port), track(upstream) else {
            try? Socket.writeAll(client, Array("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".utf8))
            return
        }
        defer { close(upstream) }
        guard (try? Socket.writeAll(client, Array("HTTP/1.1 200 Connection Established\r\n\r\n".utf8))) != nil else { return }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Self.relay(from: upstream, to: client)
            done.signal()
        }
        Self.relay(from: client, to: upstream)
        done.wait()
    }

    /// Copies until end of stream or an error, then half-closes the other side.
    private static func relay(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0, (try? Socket.writeAll(destination, Array(buffer[..<count]))) != nil else { break }
        }
        shutdown(destination, Int32(SHUT_WR))
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
