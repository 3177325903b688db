/// Finds the `crocante_session` value in a `Cookie` request header.
///
/// The header grammar is RFC 6265 §4.2.1, `cookie-pair *( ";" SP cookie-pair )`, read leniently
/// the way §5.4 user agents write it and the origin BFF reads it: pairs split at `;`, optional
/// white space around names and values, pairs without `=` skipped, names compared
/// case-sensitively. `value(in:)` gives the **first** pair with the name, even when its value is
/// empty; `values(in:)` every one, up to a bound, for logout to revoke each session it finds.
/// A value wrapped in double quotes (the `DQUOTE *cookie-octet DQUOTE` form of §4.1.1) is unwrapped.
public enum SessionCookie {
    /// The cookie the login service sets.
    public static let name = "crocante_session"
    private static let nameBytes = Array(name.utf8)

    /// The value of the first `crocante_session` pair in `header`, or nil when there is none.
    public static func value(in header: some Collection<UInt8>) -> ArraySlice<UInt8>? {
        values(in: header, limit: 1).first
    }

    /// The most session values a request is looked at for: a browser sends one per cookie
    /// that matches (host and parent domains, paths), a handful at most.
    public static let valueLimit = 4

    /// The values of the first `limit` `crocante_session` pairs in `header`, in header order.
    ///
    /// A sibling subdomain can plant a `Domain=` cookie of the same name that the browser sends
    /// first ("cookie tossing"); logout must look past it to the real session.
    public static func values(in header: some Collection<UInt8>, limit: Int = valueLimit) -> [ArraySlice<UInt8>] {
        let bytes = ArraySlice(header)
        var found: [ArraySlice<UInt8>] = []
        var pairStart = bytes.startIndex
        while pairStart <= bytes.endIndex, found.count < limit {
            let pairEnd = bytes[pairStart...].firstIndex(of: semicolon) ?? bytes.endIndex
            let pair = bytes[pairStart..<pairEnd]
            if let equals = pair.firstIndex(of: equalsSign),
                trimmed(pair[..<equals]).elementsEqual(nameBytes)
            {
                found.append(unquoted(trimmed(pair[(equals + 1)...])))
            }
            pairStart = pairEnd + 1
        }
        return found
    }

    private static let semicolon = UInt8(ascii: ";")
    private static let equalsSign = UInt8(ascii: "=")
    private static let quote = UInt8(ascii: "\"")

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    private static func trimmed(_ slice: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = slice
        while let first = slice.first, isWhitespace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isWhitespace(last) { slice = slice.dropLast() }
        return slice
    }

    private static func unquoted(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard value.count >= 2, value.first == quote, value.last == quote else { return value }
        return value.dropFirst().dropLast()
    }
}
