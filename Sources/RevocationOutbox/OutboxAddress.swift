import FoundationEssentials
import LogoutCore

/// Where the fleet's outbox lives, read from a libpq-style URL (`CROCANTE_OUTBOX`):
/// `postgres://user:password@host:5432/database?sslmode=verify-full`, or a unix socket with
/// `postgres://user@/database?host=/run/postgresql`.
///
/// A plain value: parsing never connects. The password stays out of `description`.
public struct OutboxAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The directory holding `.s.PGSQL.<port>`, as libpq's `host=/dir`.
        case unixSocket(directory: String, port: Int)

        var socketPath: String? {
            guard case .unixSocket(let directory, let port) = self else { return nil }
            return directory + "/.s.PGSQL.\(port)"
        }
    }

    /// `disable`: plain text (loopback or a unix socket only make sense). `verify-full`
    /// (also spelled `require` here, stricter than libpq's): TLS, the server's certificate
    /// checked against the system trust store and its name against the host.
    public enum TLSMode: String, Sendable, Equatable {
        case disable
        case verifyFull = "verify-full"
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// - Throws: `CrocanteError.invalidSetting(setting, ...)` naming what is wrong, never the password.
    public init(url text: String, setting: String) throws(CrocanteError) {
        func refuse(_ reason: String) -> CrocanteError { .invalidSetting(setting, reason: reason) }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw refuse("not a URL (postgres://user:password@host:5432/database)")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw refuse("must start with postgres:// or postgresql://")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard query[item.name] == nil else { throw refuse("repeats the parameter \(item.name)") }
            query[item.name] = item.value ?? ""
        }
        let known: Set = ["sslmode", "host", "port"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw refuse("has an unknown parameter \(unknown) (known: host, port, sslmode)")
        }
        let port = components.port ?? query["port"].flatMap { Int($0) } ?? 5432
        guard (1...65_535).contains(port) else { throw refuse("port must be 1–65535") }
        if let directory = query["host"] {
            guard directory.hasPrefix("/"), components.host?.isEmpty ?? true else {
                throw refuse("host= must be the absolute path of a unix socket directory, with no host in the URL")
            }
            endpoint = .unixSocket(directory: directory, port: port)
        } else {
            guard var host = components.host, !host.isEmpty else { throw refuse("names no host") }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            endpoint = .tcp(host: host, port: port)
        }
        guard let user = components.user, !user.isEmpty else { throw refuse("names no user") }
        username = user
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else { throw refuse("must name one database after the host") }
        database = path.removingPercentEncoding ?? path
        switch query["sslmode"] ?? "verify-full" {
        case "disable": tls = .disable
        case "verify-full", "require": tls = .verifyFull
        default: throw refuse("sslmode must be disable, require or verify-full")
        }
        if endpoint.socketPath != nil, tls != .disable, query["sslmode"] != nil {
            throw refuse("sslmode applies to TCP only; a unix socket is never encrypted")
        }
        if endpoint.socketPath != nil { tls = .disable }
    }

    /// `postgres://user:***@host:port/database?sslmode=…`: for logs and `check-config`.
    public var description: String {
        let credentials = username + (password == nil ? "" : ":***")
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "postgres://\(credentials)@\(shownHost):\(port)/\(database)?sslmode=\(tls.rawValue)"
        case .unixSocket(let directory, let port):
            return "postgres://\(credentials)@/\(database)?host=\(directory)&port=\(port)"
        }
    }
}
