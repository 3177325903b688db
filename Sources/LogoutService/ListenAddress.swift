import SystemCalls

/// Where the responder takes FastCGI connections from.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// A socket handed over by systemd (`LISTEN_FDS`) or as fd 0 (spawn-fcgi); if there is none,
    /// ``fallback``.
    case automatic
    /// A unix socket at an absolute path.
    case unix(path: String)
    /// A TCP socket on one IP address (v4 or v6, never "all interfaces" by accident).
    case tcp(host: String, port: UInt16)

    /// Where ``automatic`` listens when nothing was inherited: loopback only, php-fpm's port.
    public static let fallback = ListenAddress.tcp(host: "127.0.0.1", port: 9000)

    /// Parses `auto`, `unix:/path`, `127.0.0.1:9000` or `[::1]:9000`.
    public init?(parsing text: String) {
        if text == "auto" {
            self = .automatic
        } else if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/"), path.utf8.count <= SocketAddress.maximumUnixPathLength, !path.utf8.contains(0) else {
                return nil
            }
            self = .unix(path: path)
        } else {
            guard let colon = text.lastIndex(of: ":"),
                case let portText = text[text.index(after: colon)...], portText.allSatisfy(\.isASCII),
                portText.allSatisfy(\.isNumber), let port = UInt16(portText), port > 0
            else { return nil }
            var host = String(text[..<colon])
            let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
            if bracketed { host = String(host.dropFirst().dropLast()) }
            guard SocketAddress.isIPLiteral(host, version6: bracketed) else { return nil }
            self = .tcp(host: host, port: port)
        }
    }

    /// The socket address to bind; nil for ``automatic``.
    var socketAddress: SocketAddress? {
        switch self {
        case .automatic: return nil
        case .unix(let path): return .unix(path: path)
        case .tcp(let host, let port): return SocketAddress(ipLiteral: host, port: port)
        }
    }

    public var description: String {
        switch self {
        case .automatic: return "auto"
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}
