import FoundationEssentials
import Logging

/// Everything crocante-logout is told, read once at start-up from the environment (flags are
/// merged into the same names by the command line) and validated before anything starts.
///
/// | Variable | Type | Default |
/// |---|---|---|
/// | `SESSION_SECRET` | string, at least 32 bytes; else read from `SESSION_SECRET_FILE`, else from the systemd credential `session_secret` | required |
/// | `SESSION_SECRET_PREVIOUS` | as above (`SESSION_SECRET_PREVIOUS_FILE`, credential `session_secret_previous`); also opens cookies (rotation) | unset |
/// | `API_GATEWAY` (or `NEXT_PUBLIC_API_GATEWAY`) | `http`/`https` URL | required |
/// | `EP_AUTH_LOGOUT` (or `NEXT_PUBLIC_EP_AUTH_LOGOUT`) | path on the gateway | required |
/// | `APP_ENV` (or `NEXT_PUBLIC_APP_ENV`) | `development`, `staging`, `production` | `production` |
/// | `CROCANTE_LISTEN` | `auto`, `unix:/path`, `IPv4:port`, `[IPv6]:port` | `auto` |
/// | `CROCANTE_SOCKET_MODE` | octal permissions of a unix socket it creates | `0660` |
/// | `CROCANTE_WORKERS` | FastCGI worker threads, 1–1024 | 2 × processors (at least 2) |
/// | `CROCANTE_LOGOUT_PATH` | path served | `/api/auth/logout` |
/// | `CROCANTE_STATUS_PATH` | counters as JSON or Prometheus text | `/crocante-logout/status` |
/// | `CROCANTE_PING_PATH` | liveness, answers `pong` | `/crocante-logout/ping` |
/// | `CROCANTE_QUEUE_CAPACITY` | revocations waiting, 1–1000000 | `10000` |
/// | `CROCANTE_BACKEND_CONCURRENCY` | backend calls at once, 1–1024 | `16` |
/// | `CROCANTE_BACKEND_CONNECT_TIMEOUT_MS` | connect deadline, 1–60000 | `1000` |
/// | `CROCANTE_BACKEND_TIMEOUT_MS` | whole-call deadline, 1–300000 | `5000` |
/// | `CROCANTE_DRAIN_TIMEOUT_MS` | time given to queued revocations at shutdown, 0–600000 | `10000` |
/// | `CROCANTE_LOG_LEVEL` | `trace` … `critical` | `info` |
public struct Configuration: Sendable {
    public var sessionSecret: SessionSecret
    public var previousSessionSecret: SessionSecret?
    /// `POST` target for revocations: the gateway and the endpoint joined as the origin does.
    public var backendURL: String
    public var appEnvironment: AppEnvironment
    public var listen: ListenAddress
    public var socketMode: UInt32
    public var workers: Int
    public var logoutPath: String
    /// Answers the counters as JSON, or Prometheus text with `?format=prometheus`.
    public var statusPath: String
    /// Answers `pong`.
    public var pingPath: String
    public var queueCapacity: Int
    public var backendConcurrency: Int
    public var backendConnectTimeout: Duration
    public var backendTimeout: Duration
    public var drainTimeout: Duration
    public var logLevel: Logger.Level

    /// The deployment the origin calls `APP_ENV`; only production marks the cookie `Secure`.
    public enum AppEnvironment: String, Sendable, CaseIterable {
        case development, staging, production
    }

    /// Reads and validates every setting.
    /// - Parameters:
    ///   - environment: variable names to values (the process environment, with flags merged in).
    ///   - processorCount: sets the default worker count.
    ///   - readFile: the contents of a file, or nil when it cannot be read (for `*_FILE` and credentials).
    public init(
        environment: [String: String], processorCount: Int,
        readFile: @escaping (String) -> String? = Configuration.readTextFile
    ) throws(CrocanteError) {
        let reader = SettingReader(environment: environment, readFile: readFile)
        guard let current = try reader.secret("SESSION_SECRET", credential: "session_secret") else {
            throw .missingSetting("SESSION_SECRET")
        }
        sessionSecret = try SessionSecret(current.value, setting: current.source)
        previousSessionSecret = try reader.secret("SESSION_SECRET_PREVIOUS", credential: "session_secret_previous").map {
            found throws(CrocanteError) in try SessionSecret(found.value, setting: found.source)
        }
        backendURL = Self.joinURL(
            gateway: try reader.gateway("API_GATEWAY"),
            endpoint: try reader.endpointPath("EP_AUTH_LOGOUT")
        )
        appEnvironment = try reader.parsed("APP_ENV", default: .production) { AppEnvironment(rawValue: $0) }
        listen = try reader.parsed("CROCANTE_LISTEN", default: .automatic) { ListenAddress(parsing: $0) }
        socketMode = try reader.parsed("CROCANTE_SOCKET_MODE", default: 0o660) { text in
            UInt32(text, radix: 8).flatMap { $0 <= 0o777 ? $0 : nil }
        }
        workers = try reader.integer("CROCANTE_WORKERS", default: min(1024, max(2, 2 * processorCount)), in: 1...1024)
        logoutPath = try reader.path("CROCANTE_LOGOUT_PATH", default: "/api/auth/logout")
        statusPath = try reader.path("CROCANTE_STATUS_PATH", default: "/crocante-logout/status")
        pingPath = try reader.path("CROCANTE_PING_PATH", default: "/crocante-logout/ping")
        guard Set([logoutPath, statusPath, pingPath]).count == 3 else {
            throw .invalidSetting("CROCANTE_STATUS_PATH", reason: "the logout, status and ping paths must differ")
        }
        queueCapacity = try reader.integer("CROCANTE_QUEUE_CAPACITY", default: 10_000, in: 1...1_000_000)
        backendConcurrency = try reader.integer("CROCANTE_BACKEND_CONCURRENCY", default: 16, in: 1...1024)
        backendConnectTimeout = .milliseconds(
            try reader.integer("CROCANTE_BACKEND_CONNECT_TIMEOUT_MS", default: 1000, in: 1...60_000))
        backendTimeout = .milliseconds(try reader.integer("CROCANTE_BACKEND_TIMEOUT_MS", default: 5000, in: 1...300_000))
        drainTimeout = .milliseconds(try reader.integer("CROCANTE_DRAIN_TIMEOUT_MS", default: 10_000, in: 0...600_000))
        logLevel = try reader.parsed("CROCANTE_LOG_LEVEL", default: .info) { Logger.Level(rawValue: $0) }
    }

    /// The secrets that open cookies, current first.
    public var sessionSecrets: [SessionSecret] {
        [sessionSecret] + (previousSessionSecret.map { [$0] } ?? [])
    }

    /// Whether the cleared cookie carries `Secure`.
    public var secureCookie: Bool { appEnvironment == .production }

    /// The origin's join: one trailing `/` of the gateway dropped, exactly one `/` before the endpoint.
    static func joinURL(gateway: String, endpoint: String) -> String {
        let base = gateway.hasSuffix("/") ? String(gateway.dropLast()) : gateway
        return base + "/" + endpoint.drop(while: { $0 == "/" })
    }
}

/// Reads one setting at a time, naming the variable in every error.
private struct SettingReader {
    let environment: [String: String]
    let readFile: (String) -> String?

    /// A secret from `name`, else from the file `name_FILE` names, else from the systemd
    /// credential (`$CREDENTIALS_DIRECTORY/credential`); with the setting to blame if it is bad.
    func secret(_ name: String, credential: String) throws(CrocanteError) -> (value: String, source: String)? {
        if let value = optional(name) { return (value, name) }
        if let path = optional(name + "_FILE") {
            guard let text = readFile(path) else { throw .invalidSetting(name + "_FILE", reason: "cannot read \(quoted(path))") }
            return (Self.withoutFinalNewline(text), name + "_FILE")
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty,
            let text = readFile(directory + "/" + credential)
        {
            return (Self.withoutFinalNewline(text), "credential \(credential)")
        }
        return nil
    }

    /// Editors and `echo` end files with a newline that is not part of the secret.
    private static func withoutFinalNewline(_ text: String) -> String {
        var text = Substring(text)
        if text.hasSuffix("\n") { text = text.dropLast() }
        if text.hasSuffix("\r") { text = text.dropLast() }
        return String(text)
    }

    func path(_ name: String, default defaultValue: String) throws(CrocanteError) -> String {
        try parsed(name, default: defaultValue) { path in
            path.hasPrefix("/") && path.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) && !path.contains("?") ? path : nil
        }
    }

    /// Settings the origin's `.env` files spell with `NEXT_PUBLIC_`. Never a secret: Next.js
    /// ships `NEXT_PUBLIC_*` values to the browser.
    private static let publicSpellings: Set = ["API_GATEWAY", "EP_AUTH_LOGOUT", "APP_ENV"]

    /// The value under `name`, else under its `NEXT_PUBLIC_` spelling where the origin has one;
    /// empty counts as unset.
    func optional(_ name: String) -> String? {
        if let value = environment[name], !value.isEmpty { return value }
        guard Self.publicSpellings.contains(name), let value = environment["NEXT_PUBLIC_" + name], !value.isEmpty else {
            return nil
        }
        return value
    }

    func required(_ name: String) throws(CrocanteError) -> String {
        guard let value = optional(name) else { throw .missingSetting(name) }
        return value
    }

    func parsed<Value>(_ name: String, default defaultValue: Value, _ parse: (String) -> Value?) throws(CrocanteError) -> Value {
        guard let text = optional(name) else { return defaultValue }
        guard let value = parse(text) else { throw .invalidSetting(name, reason: "\(quoted(text)) is not accepted") }
        return value
    }

    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(CrocanteError) -> Int {
        guard let text = optional(name) else { return defaultValue }
        guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let value = Int(text),
            range.contains(value)
        else {
            throw .invalidSetting(name, reason: "\(quoted(text)) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func gateway(_ name: String) throws(CrocanteError) -> String {
        let text = try required(name)
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host(), !host.isEmpty, url.query == nil, url.fragment == nil
        else { throw .invalidSetting(name, reason: "\(quoted(text)) is not an http:// or https:// URL with a host") }
        return text
    }

    func endpointPath(_ name: String) throws(CrocanteError) -> String {
        let text = try required(name)
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }), text.contains(where: { $0 != "/" }) else {
            throw .invalidSetting(name, reason: "\(quoted(text)) is not a path")
        }
        return text
    }

    /// Settings here are not secret, but a pasted value can be long or hold control bytes.
    private func quoted(_ text: String) -> String {
        let printable = text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" }
        return "\"" + String(printable.prefix(80)) + "\""
    }
}

extension Configuration {
    /// One `NAME=value` line per setting, secrets redacted: what `check-config` prints.
    public var summary: String {
        [
            "SESSION_SECRET=(set, redacted)",
            "SESSION_SECRET_PREVIOUS=\(previousSessionSecret == nil ? "(unset)" : "(set, redacted)")",
            "backend URL=\(Self.redactingCredentials(backendURL))",
            "APP_ENV=\(appEnvironment.rawValue) (cleared cookie \(secureCookie ? "is" : "is not") Secure)",
            "CROCANTE_LISTEN=\(listen)",
            "CROCANTE_SOCKET_MODE=0\(String(socketMode, radix: 8))",
            "CROCANTE_WORKERS=\(workers)",
            "CROCANTE_LOGOUT_PATH=\(logoutPath)",
            "CROCANTE_STATUS_PATH=\(statusPath)",
            "CROCANTE_PING_PATH=\(pingPath)",
            "CROCANTE_QUEUE_CAPACITY=\(queueCapacity)",
            "CROCANTE_BACKEND_CONCURRENCY=\(backendConcurrency)",
            "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS=\(backendConnectTimeout.milliseconds)",
            "CROCANTE_BACKEND_TIMEOUT_MS=\(backendTimeout.milliseconds)",
            "CROCANTE_DRAIN_TIMEOUT_MS=\(drainTimeout.milliseconds)",
            "CROCANTE_LOG_LEVEL=\(logLevel.rawValue)",
        ].joined(separator: "\n")
    }
}

extension Configuration {
    /// `url` with any `user:password@` replaced by `***@`, for logs and `check-config`.
    public static func redactingCredentials(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let authorityEnd = url[schemeEnd.upperBound...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") else { return url }
        return url[..<schemeEnd.upperBound] + "***" + url[at...]
    }

    /// Reads a whole file as UTF-8 text; nil when it cannot be read.
    public static func readTextFile(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}

extension Duration {
    /// Whole milliseconds, for printing settings given in milliseconds.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
