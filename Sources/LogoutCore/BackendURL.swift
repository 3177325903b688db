#if canImport(Glibc)
import Glibc
#endif

/// The checks `API_GATEWAY` and `EP_AUTH_LOGOUT` pass at start-up, so that no value reaches a
/// trap in the HTTP client (a port over 65535 crashed `serve` in NIO) or is sent somewhere else
/// than it reads (`../` or `%2e%2e/` walk out of the gateway's path with the bearer token, an
/// absolute URL in the endpoint, a `#fragment` dropped, `user:pw@` accepted and not sent).
///
/// Pure: strings in, the accepted string or a `CrocanteError` naming the setting out.
public enum BackendURL {
    /// The parts of an accepted gateway.
    public struct Gateway: Sendable, Equatable {
        public let scheme: String
        public let host: String
        public let port: Int?
        public let path: String
    }

    /// Checks an `http://` or `https://` base URL: a host that is a DNS name or an IP literal,
    /// an optional port 1–65535, an optional base path; no userinfo, query or fragment.
    public static func gateway(_ text: String, setting: String) throws(CrocanteError) -> Gateway {
        func refuse(_ why: String) -> CrocanteError { .invalidSetting(setting, reason: why) }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw refuse("must be visible ASCII without spaces")
        }
        guard let separator = text.firstRange(of: "://") else { throw refuse("is not an http:// or https:// URL") }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw refuse("the scheme must be http or https") }
        let rest = text[separator.upperBound...]
        guard !rest.contains("#") else { throw refuse("a #fragment is never sent; remove it") }
        guard !rest.contains("?") else { throw refuse("a ?query would be lost when the endpoint is joined; remove it") }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.contains("@") else {
            throw refuse("user:password@ is not sent by the HTTP client; give the backend another way to trust this host")
        }
        let (host, port) = try hostAndPort(authority, refuse: refuse)
        let path = String(rest[authorityEnd...])
        try checkPath(path, refuse: refuse)
        return Gateway(scheme: scheme, host: host, port: port, path: path)
    }

    /// Checks the endpoint path joined to the gateway: no scheme or `//` (an absolute URL would
    /// land inside the gateway's path), no fragment, no `.`/`..` segment, no percent-encoded dot.
    public static func endpoint(_ text: String, setting: String) throws(CrocanteError) -> String {
        func refuse(_ why: String) -> CrocanteError { .invalidSetting(setting, reason: why) }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }), text.contains(where: { $0 != "/" }) else {
            throw refuse("is not a path")
        }
        guard !text.contains("://"), !text.hasPrefix("//"), !hasScheme(text) else { throw refuse("must be a path on the gateway, not a URL") }
        guard !text.contains("#") else { throw refuse("a #fragment is never sent; remove it") }
        let query = text.firstIndex(of: "?") ?? text.endIndex
        try checkPath(String(text[..<query]), refuse: refuse)
        return text
    }

    /// `scheme:` at the start (RFC 3986 §3.1), as in `http:x` or `javascript:`.
    static func hasScheme(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), let first = text.first, first.isASCII, first.isLetter else { return false }
        let slash = text.firstIndex(of: "/") ?? text.endIndex
        return colon < slash
            && text[..<colon].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
    }

    private static func checkPath(_ path: String, refuse: (String) -> CrocanteError) throws(CrocanteError) {
        guard !path.contains("\\") else { throw refuse("a backslash is read as / by some servers; remove it") }
        let lowered = path.lowercased()
        guard !lowered.contains("%2e"), !lowered.contains("%2f"), !lowered.contains("%5c") else {
            throw refuse("percent-encoded dots or slashes may be decoded into another path; write the path plainly")
        }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) where segment == "." || segment == ".." {
            throw refuse("`.` and `..` segments are resolved by servers into another path; write the path plainly")
        }
    }

    private static func hostAndPort(
        _ authority: Substring, refuse: (String) -> CrocanteError
    ) throws(CrocanteError) -> (String, Int?) {
        var host = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw refuse("an IPv6 host needs its closing ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw refuse("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(host), &address) == 1 else { throw refuse("the IPv6 host is not an address") }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            }
            try checkHostName(host, refuse: refuse)
        }
        guard let portText else { return (String(host), nil) }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), (1...65535).contains(port)
        else { throw refuse("the port must be a number from 1 to 65535") }
        return (String(host), port)
    }

    /// A DNS name (RFC 1123 labels) or a dotted IPv4 address.
    private static func checkHostName(_ host: Substring, refuse: (String) -> CrocanteError) throws(CrocanteError) {
        guard !host.isEmpty else { throw refuse("the URL has no host") }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) {
            var address = in_addr()
            guard labels.count == 4, inet_pton(AF_INET, String(host), &address) == 1 else {
                throw refuse("the host is neither a name nor an IPv4 address")
            }
            return
        }
        guard host.utf8.count <= 253,
            labels.allSatisfy({ label in
                !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            })
        else { throw refuse("the host is not a valid name") }
    }
}
