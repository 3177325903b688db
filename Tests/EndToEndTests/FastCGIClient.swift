import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Just enough of FastCGI (responder role, request id 1) to talk to the responder's socket
/// directly: to hold a request half-sent across a signal, or to send a broken one.
enum FastCGIClient {
    static func record(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
        [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }

    static func length(_ count: Int) -> [UInt8] {
        count < 128 ? [UInt8(count)] : [UInt8((count >> 24) | 0x80), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
    }

    /// A complete request: begin, the parameters nginx would send, empty stdin; with
    /// `keepConnection`, the begin record's `FCGI_KEEP_CONN` flag, as `fastcgi_keep_conn on` sets it.
    static func request(method: String = "POST", path: String = "/api/auth/logout", cookie: String?, keepConnection: Bool = false) -> [UInt8] {
        var parameters: [(String, String)] = [
            ("REQUEST_METHOD", method), ("DOCUMENT_URI", path), ("SCRIPT_NAME", path), ("REQUEST_URI", path),
            ("QUERY_STRING", ""), ("CONTENT_LENGTH", "0"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ]
        if let cookie { parameters.append(("HTTP_COOKIE", "crocante_session=\(cookie)")) }
        var encoded: [UInt8] = []
        for (name, value) in parameters {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        return record(1, [0, 1, keepConnection ? 1 : 0, 0, 0, 0, 0, 0]) + record(4, encoded) + record(4, []) + record(5, [])
    }

    /// `FCGI_GET_VALUES` (request id 0) asking `names` with empty values, unpadded, as HAProxy's
    /// `option get-values` sends it.
    static func getValues(_ names: [String]) -> [UInt8] {
        let content: [UInt8] = names.flatMap { length($0.utf8.count) + [0] + Array($0.utf8) }
        return [1, 9, 0, 0, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }

    /// Reads exactly one record (header, content, padding); nil when the responder closed first.
    static func readRecord(_ fd: Int32) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        var needed = 8
        var byte: UInt8 = 0
        while bytes.count < needed {
            let count = recv(fd, &byte, 1, 0)
            if count == 0 { return nil }
            guard count > 0 else { throw HarnessError("recv: errno \(errno) after \(bytes.count) bytes") }
            bytes.append(byte)
            if bytes.count == 8 { needed = 8 + (Int(bytes[4]) << 8 | Int(bytes[5])) + Int(bytes[6]) }
        }
        return bytes
    }

    /// Reads one response on a connection that stays open: records up to and including
    /// `FCGI_END_REQUEST`; its CGI text, or nil when the responder closed first.
    static func responseOnKeptConnection(_ fd: Int32) throws -> String? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var offset = 0
            while offset + 8 <= bytes.count {
                let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
                let end = offset + 8 + length + Int(bytes[offset + 6])
                guard end <= bytes.count else { break }
                if bytes[offset + 1] == 3 { return String(decoding: stdout(of: Array(bytes[..<end])), as: UTF8.self) }
                offset = end
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            guard count > 0 else { throw HarnessError("recv: errno \(errno) after \(bytes.count) bytes") }
            bytes += buffer[..<count]
        }
    }

    /// The CGI response (the STDOUT records joined) from a response stream.
    static func stdout(of bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            let start = offset + 8
            guard start + length <= bytes.count else { break }
            if type == 6 { output += bytes[start..<(start + length)] }
            offset = start + length + padding
        }
        return output
    }

    /// Reads the whole response on `fd` (until the responder closes) and returns its CGI text.
    static func response(on fd: Int32) throws -> String {
        String(decoding: stdout(of: try Socket.readToEnd(fd)), as: UTF8.self)
    }

    /// One whole request on a fresh connection to the unix socket at `path`: the CGI text answered.
    static func exchange(unixSocket path: String, _ request: [UInt8]) throws -> String {
        let fd = try Socket.connectUnix(path: path)
        defer { close(fd) }
        try Socket.writeAll(fd, request)
        return try response(on: fd)
    }
}
