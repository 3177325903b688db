/// An HTTP answer as a client received it (curl's or ``RawHTTP``'s bytes, parsed).
struct HTTPAnswer {
    let status: Int
    /// Header lines in order, as sent (without the status line).
    let headerLines: [String]
    let body: String

    func header(_ name: String) -> String? {
        headerLines.first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
    }
}

extension HTTPAnswer {
    /// The body with a chunked transfer coding undone (Apache re-sends answers chunked); as
    /// received otherwise. Nil when the chunks are malformed or incomplete.
    var decodedBody: String? {
        guard header("Transfer-Encoding")?.lowercased() == "chunked" else { return body }
        let bytes = Array(body.utf8)
        var decoded: [UInt8] = []
        var offset = 0
        while let lineEnd = bytes[offset...].firstIndex(of: 0x0D), lineEnd + 1 < bytes.count, bytes[lineEnd + 1] == 0x0A {
            let sizeField = String(decoding: bytes[offset..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeField, radix: 16) else { return nil }
            offset = lineEnd + 2
            if size == 0 { return String(decoding: decoded, as: UTF8.self) }
            guard bytes.count >= offset + size + 2 else { return nil }
            decoded += bytes[offset..<(offset + size)]
            offset += size + 2
        }
        return nil
    }
}
