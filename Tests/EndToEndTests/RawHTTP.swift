import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a test's HTTP client reaches nginx: a loopback port, or a unix socket (nginx inside a
/// network namespace the test process is not in).
enum HTTPEndpoint: Sendable {
    case loopback(port: UInt16)
    case unix(path: String)
}

/// HTTP/1.1 over a plain socket: exact request bytes (invalid UTF-8, repeated headers), no curl.
enum RawHTTP {
    /// A request closing its connection; each `cookies` element becomes its own `Cookie:` line.
    static func request(_ method: String, path: String = "/api/auth/logout", cookies: [[UInt8]] = [], headers: [String] = [], body: [UInt8] = [])
        -> [UInt8]
    {
        var bytes = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".utf8)
        for cookie in cookies { bytes += Array("Cookie: ".utf8) + cookie + [0x0D, 0x0A] }
        for header in headers { bytes += Array("\(header)\r\n".utf8) }
        if !body.isEmpty || method == "POST" || method == "PUT" { bytes += Array("Content-Length: \(body.count)\r\n".utf8) }
        return bytes + [0x0D, 0x0A] + body
    }

    /// A logout POST carrying `crocante_session=<cookie>`.
    static func logout(cookie: String) -> [UInt8] {
        request("POST", cookies: [Array("crocante_session=\(cookie)".utf8)])
    }

    /// Sends `request` to 127.0.0.1:`port` and reads until the server closes.
    static func exchange(port: UInt16, _ request: [UInt8]) throws -> [UInt8] {
        try exchange(.loopback(port: port), request)
    }

    /// Sends `request` to `endpoint` and reads until the server closes.
    static func exchange(_ endpoint: HTTPEndpoint, _ request: [UInt8]) throws -> [UInt8] {
        let fd: Int32
        switch endpoint {
        case .loopback(let port): fd = try Socket.connectTCP(port: port)
        case .unix(let path): fd = try Socket.connectUnix(path: path)
        }
        defer { close(fd) }
        try Socket.writeAll(fd, request)
        return try Socket.readToEnd(fd)
    }

    static func parse(_ bytes: [UInt8]) throws -> HTTPAnswer {
        let separator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) }) else {
            throw HarnessError("no end of headers in: \(String(decoding: bytes, as: UTF8.self))")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw HarnessError("no status line in: \(String(decoding: bytes, as: UTF8.self))")
        }
        return HTTPAnswer(status: status, headerLines: Array(lines.dropFirst()), body: String(decoding: bytes[(end + 4)...], as: UTF8.self))
    }

    static func accepts(port: UInt16) -> Bool {
        guard let fd = try? Socket.connectTCP(port: port) else { return false }
        close(fd)
        return true
    }
}
