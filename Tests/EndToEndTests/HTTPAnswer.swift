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
