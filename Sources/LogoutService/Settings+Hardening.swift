import FastCGI
import LogoutCore

/// The settings that bound what a peer can make the responder do (issue 10).
extension Settings {
    static let requestTimeout = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_REQUEST_TIMEOUT_MS", flag: "request-timeout-ms", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "100–60000 ms", defaultText: "`2000`",
            help: "From accepting a FastCGI connection to having its complete params; a peer that has not sent them by then is closed, however slowly it drips.",
            example: nil),
        in: 100...60_000, default: 2000)

    static let allowedClients = Setting<[ConnectionAllowlist.Network]>(
        declaration: SettingDeclaration(
            name: "CROCANTE_ALLOWED_CLIENTS", flag: "allowed-clients", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "comma-separated IPv4/IPv6 addresses and CIDR networks", defaultText: "unset (any)",
            help: "TCP peers that may connect, as php-fpm's `listen.allowed_clients`; others are closed before a byte is read.",
            example: nil),
        defaultValue: { _ in [] },
        parse: { text in
            ConnectionAllowlist.clients(parsing: text).map { .success($0) }
                ?? .failure(.init(reason: "is not a comma-separated list of addresses and networks"))
        },
        render: { $0.isEmpty ? "(any)" : $0.map(\.description).joined(separator: ",") })

    /// Unix peers by numeric uid and gid.
    struct PeerIDs: Sendable, Equatable {
        var users: [UInt32] = []
        var groups: [UInt32] = []
    }

    static let allowedPeers = Setting<PeerIDs>(
        declaration: SettingDeclaration(
            name: "CROCANTE_ALLOWED_PEERS", flag: "allowed-peers", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "comma-separated `uid:N` and `gid:N`", defaultText: "unset (any)",
            help: "Unix-socket peers that may connect, by the uid or gid the kernel reports (`SO_PEERCRED`); keeps out a PHP pool sharing nginx's group.",
            example: nil),
        defaultValue: { _ in PeerIDs() },
        parse: { text in
            ConnectionAllowlist.peers(parsing: text).map { .success(PeerIDs(users: $0.users, groups: $0.groups)) }
                ?? .failure(.init(reason: "is not a comma-separated list of uid:N and gid:N"))
        },
        render: { peers in
            peers.users.isEmpty && peers.groups.isEmpty
                ? "(any)" : (peers.users.map { "uid:\($0)" } + peers.groups.map { "gid:\($0)" }).joined(separator: ",")
        })

    static let secretMismatchPercent = Setting<Int>.integer(
        SettingDeclaration(
            name: "CROCANTE_SECRET_MISMATCH_PERCENT", flag: "secret-mismatch-percent", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "0–100", defaultText: "`50`",
            help: "Warn, naming `SESSION_SECRET`, when at least this share of the session cookies seen in a minute (20 or more) fail the tag check; 0 never warns.",
            example: nil),
        in: 0...100, default: { _ in 50 })

    static let clearCookieVariants = Setting<[String]>(
        declaration: SettingDeclaration(
            name: "CROCANTE_CLEAR_COOKIE_VARIANTS", flag: "clear-cookie-variants", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "comma-separated `Domain=host` values", defaultText: "unset",
            help: "One more `Set-Cookie` clearing the session per variant, e.g. `Domain=.example.com` for a cookie planted by a sibling subdomain.",
            example: nil),
        defaultValue: { _ in [] },
        parse: { text in
            LogoutResponse.cookieVariants(parsing: text).map { .success($0) }
                ?? .failure(.init(reason: "is not a comma-separated list of Domain=host"))
        },
        render: { $0.isEmpty ? "(none)" : $0.joined(separator: ",") })
}
