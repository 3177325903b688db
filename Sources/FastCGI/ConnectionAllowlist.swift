#if canImport(Glibc)
import Glibc
#endif

/// Who may talk FastCGI to the responder, checked on every accepted connection before a byte is
/// read: for TCP the peer's address against networks (php-fpm's `listen.allowed_clients`), for a
/// unix socket the peer's uid and gid (`SO_PEERCRED`) against lists. An empty list allows all.
///
/// Pure: parsing and matching take values; the server supplies the peer.
public struct ConnectionAllowlist: Sendable, Equatable {
    /// An IPv4 or IPv6 network: an address and a prefix length.
    public struct Network: Sendable, Equatable, CustomStringConvertible {
        /// 4 or 16 bytes, host bits cleared.
        public let address: [UInt8]
        public let prefixLength: Int

        /// Parses `192.0.2.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; nil for anything else.
        public init?(parsing text: some StringProtocol) {
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.addressBytes(String(parts[0])) else { return nil }
            let bits = bytes.count * 8
            var prefix = bits
            if parts.count == 2 {
                guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 3,
                    let parsed = Int(parts[1]), parsed <= bits
                else { return nil }
                prefix = parsed
            }
            address = Self.masked(bytes, prefixLength: prefix)
            prefixLength = prefix
        }

        /// Whether `peer` (4 or 16 bytes) is in the network; an IPv4-mapped IPv6 peer
        /// (`::ffff:a.b.c.d`, from a dual-stack socket) matches IPv4 networks.
        public func contains(_ peer: [UInt8]) -> Bool {
            var peer = peer
            if peer.count == 16, address.count == 4, peer[..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
                peer = Array(peer[12...])
            }
            return peer.count == address.count && Self.masked(peer, prefixLength: prefixLength) == address
        }

        public var description: String {
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = address.withUnsafeBytes { inet_ntop(address.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefixLength)"
        }

        static func addressBytes(_ text: String) -> [UInt8]? {
            var v4 = in_addr()
            if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
            return nil
        }

        static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
            bytes.enumerated().map { index, byte in
                let keep = min(8, max(0, prefixLength - index * 8))
                return keep == 8 ? byte : byte & ~(UInt8(0xFF) >> keep)
            }
        }
    }

    /// TCP peers allowed; empty allows every address.
    public var clients: [Network]
    /// Unix peers allowed by uid; with `groups`, empty both allow every peer.
    public var users: [UInt32]
    public var groups: [UInt32]

    public init(clients: [Network] = [], users: [UInt32] = [], groups: [UInt32] = []) {
        self.clients = clients
        self.users = users
        self.groups = groups
    }

    /// Allows every peer.
    public static let everyone = ConnectionAllowlist()

    /// Parses a comma-separated list of addresses and networks (`CROCANTE_ALLOWED_CLIENTS`).
    public static func clients(parsing text: String) -> [Network]? {
        var networks: [Network] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingWhitespace
            guard !trimmed.isEmpty else { continue }
            guard let network = Network(parsing: trimmed) else { return nil }
            networks.append(network)
        }
        return networks.isEmpty ? nil : networks
    }

    /// Parses `uid:33,gid:33` (`CROCANTE_ALLOWED_PEERS`): numeric ids, each `uid:` or `gid:`.
    public static func peers(parsing text: String) -> (users: [UInt32], groups: [UInt32])? {
        var users: [UInt32] = []
        var groups: [UInt32] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingWhitespace
            guard !trimmed.isEmpty else { continue }
            let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let id = UInt32(parts[1]) else { return nil }
            switch parts[0] {
            case "uid": users.append(id)
            case "gid": groups.append(id)
            default: return nil
            }
        }
        return users.isEmpty && groups.isEmpty ? nil : (users, groups)
    }

    /// Whether a TCP peer at `address` (4 or 16 bytes) may connect.
    public func allows(address: [UInt8]) -> Bool {
        clients.isEmpty || clients.contains { $0.contains(address) }
    }

    /// Whether a unix peer running as `uid`/`gid` may connect.
    public func allows(uid: UInt32, gid: UInt32) -> Bool {
        (users.isEmpty && groups.isEmpty) || users.contains(uid) || groups.contains(gid)
    }

    /// Whether any check applies; when not, the server skips looking at peers.
    public var isRestricted: Bool { !clients.isEmpty || !users.isEmpty || !groups.isEmpty }
}

extension Substring {
    var trimmingWhitespace: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
