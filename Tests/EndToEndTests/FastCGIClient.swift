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

    /// A complete request: begin, the parameters nginx would send, empty stdin.
    static func request(method: String = "POST", path: String = "/api/auth/logout", cookie: String?) -> [UInt8] {
        var parameters: [(String, String)] = [
            ("REQUEST_METHOD", method), ("DOCUMENT_URI", path), ("SCRIPT_NAME", path), ("REQUEST_URI", path),
            ("QUERY_STRING", ""), ("CONTENT_LENGTH", "0"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ]
        if let cookie { parameters.append(("HTTP_COOKIE", "crocante_session=\(cookie)")) }
        var encoded: [UInt8] = []
        for (name, value) in parameters {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        return record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + record(4, encoded) + record(4, []) + record(5, [])
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
