import FastCGI
import FoundationEssentials
import Logging
import LogoutCore
import Revocation
import RevocationOutbox

/// Everything crocante-logout is told, read once at start-up from the environment (flags are
/// written over the same names by the command line) and validated before anything starts.
///
/// Each key, its type, range, default and meaning is declared once in ``Settings``; the README's
/// configuration table and `deploy/env.example` are rendered from there and tested against it.
public struct Configuration: Sendable {
    public var sessionSecret: SessionSecret
    public var previousSessionSecret: SessionSecret?
    /// `POST` target for revocations: the gateway and the endpoint joined as the origin does.
    public var backendURL: String
    public var appEnvironment: AppEnvironment
    public var listen: ListenAddress
    public var socketMode: UInt32
    public var workers: Int
    /// Whether connections nginx asks to keep are kept, and for how long when idle.
    public var keepPolicy: KeepConnectionPolicy
    public var logoutPath: String
    /// Answers the counters as JSON, or Prometheus text with `?format=prometheus`.
    public var statusPath: String
    /// Answers `pong`.
    public var pingPath: String
    public var queueCapacity: Int
    public var backendConcurrency: Int
    public var backendConnectTimeout: Duration
    public var backendTimeout: Duration
    /// Trust and client certificate for an `https://` backend, loaded and checked; nil for http.
    public var backendTLS: BackendTLS?
    /// The egress proxy (`CROCANTE_BACKEND_PROXY`); nil connects directly.
    public var backendProxy: BackendProxy?
    public var drainTimeout: Duration
    /// Where pending revocations survive a crash or restart; nil runs memory-only.
    public var spoolDirectory: String?
    /// The name to blame when the spool directory is refused: the setting, or systemd's variable.
    public var spoolDirectorySource: String
    public var spoolSyncInterval: Duration
    public var spoolMaxBytes: Int
    /// The fleet's shared outbox on PostgreSQL; nil: this host delivers its own revocations.
    public var outbox: OutboxAddress?
    public var dedupWindow: Duration
    public var retryBase: Duration
    public var retryMax: Duration
    public var revocationMaxAge: Duration
    public var logLevel: Logger.Level
    /// From accept to complete params (`CROCANTE_REQUEST_TIMEOUT_MS`).
    public var requestTimeout: Duration
    /// Who may connect (`CROCANTE_ALLOWED_CLIENTS`, `CROCANTE_ALLOWED_PEERS`).
    public var allowlist: ConnectionAllowlist
    /// The share of present cookies failing the tag check, over a minute, that warns; 0 never.
    public var secretMismatchShare: Double
    /// Extra `Domain=` attributes, one more cleared cookie each (`CROCANTE_CLEAR_COOKIE_VARIANTS`).
    public var clearCookieVariants: [String]
    /// The `Clear-Site-Data` value the logout answer carries, quoted; nil sends none (`CROCANTE_CLEAR_SITE_DATA`).
    public var clearSiteData: String?
    /// Test only, deliberately not in the settings table: `CROCANTE_TEST_WEDGE_PATH`, a path whose
    /// request parks every worker for good, so that a test can see systemd's watchdog restart a
    /// wedged responder. Unset (the only sane production value), no path does it.
    public var testWedgePath: String?
    /// Accepted but suspicious values, to log as warnings at start-up; never a secret.
    public let warnings: [String]
    /// `NAME=value` for every setting in table order, secrets redacted: what `check-config` prints.
    public let summary: String

    /// The deployment the origin calls `APP_ENV`; only production marks the cookie `Secure`.
    public enum AppEnvironment: String, Sendable, CaseIterable {
        case development, staging, production
    }

    /// The test-only variable of ``testWedgePath``.
    public static let testWedgeVariable = "CROCANTE_TEST_WEDGE_PATH"

    /// Reads and validates every setting.
    /// - Parameters:
    ///   - environment: variable names to values (the process environment, with flags written over it).
    ///   - processorCount: sets the default worker count.
    ///   - readFile: the contents of a file, or nil when it cannot be read (for `*_FILE`, credentials
    ///     and PEM files).
    ///   - now: the wall clock, for the client certificate's expiry warning.
    public init(
        environment: [String: String], processorCount: Int,
        readFile: @escaping (String) -> String? = Configuration.readTextFile, now: Date = Date()
    ) throws(CrocanteError) {
        let defaults = SettingDefaults(
            processorCount: processorCount, stateDirectory: environment["STATE_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 })
        var reader = SettingReader(environment: environment, defaults: defaults, readFile: readFile)
        guard let current = try reader.secret(Settings.sessionSecret) else { throw .missingSetting(Settings.sessionSecret.name) }
        sessionSecret = current
        previousSessionSecret = try reader.secret(Settings.previousSessionSecret)
        let gateway = try reader.value(Settings.apiGateway)
        let endpoint = try reader.value(Settings.logoutEndpoint)
        backendURL = Self.joinURL(gateway: gateway, endpoint: endpoint)
        appEnvironment = try reader.value(Settings.appEnvironment)
        listen = try reader.value(Settings.listen)
        socketMode = try reader.value(Settings.socketMode)
        workers = try reader.value(Settings.workers)
        keepPolicy = KeepConnectionPolicy(
            enabled: try reader.value(Settings.keepConnections), idleLimit: try reader.value(Settings.keepaliveIdle))
        logoutPath = try reader.value(Settings.logoutPath)
        statusPath = try reader.value(Settings.statusPath)
        pingPath = try reader.value(Settings.pingPath)
        guard Set([logoutPath, statusPath, pingPath]).count == 3 else {
            throw .invalidSetting(Settings.statusPath.declaration.name, reason: "the logout, status and ping paths must differ")
        }
        queueCapacity = try reader.value(Settings.queueCapacity)
        backendConcurrency = try reader.value(Settings.backendConcurrency)
        backendConnectTimeout = try reader.value(Settings.backendConnectTimeout)
        backendTimeout = try reader.value(Settings.backendTimeout)
        // A URL async-http-client refuses is refused here too, so check-config says what serve would.
        try HTTPBackendNotifier.validate(url: backendURL)
        let tlsWarnings: [String]
        (backendTLS, tlsWarnings) = try Self.readBackendTLS(&reader, gateway: gateway, readFile: readFile, now: now)
        backendProxy = try reader.value(Settings.backendProxy)
        drainTimeout = try reader.value(Settings.drainTimeout)
        requestTimeout = try reader.value(Settings.requestTimeout)
        let clients = try reader.value(Settings.allowedClients)
        let peers = try reader.value(Settings.allowedPeers)
        allowlist = ConnectionAllowlist(clients: clients, users: peers.users, groups: peers.groups)
        secretMismatchShare = Double(try reader.value(Settings.secretMismatchPercent)) / 100
        clearCookieVariants = try reader.value(Settings.clearCookieVariants)
        clearSiteData = try reader.value(Settings.clearSiteData)
        spoolDirectory = try reader.value(Settings.spoolDirectory)
        spoolDirectorySource = reader.isGiven(Settings.spoolDirectory.declaration) ? Settings.spoolDirectory.declaration.name : "STATE_DIRECTORY"
        spoolSyncInterval = try reader.value(Settings.spoolSync)
        spoolMaxBytes = try reader.value(Settings.spoolMaxBytes)
        outbox = try reader.secretText(named: Settings.outbox).map { (found) throws(CrocanteError) in
            try OutboxAddress(url: found.value, setting: found.setting)
        }
        dedupWindow = try reader.value(Settings.dedupWindow)
        retryBase = try reader.value(Settings.retryBase)
        retryMax = try reader.value(Settings.retryMax)
        guard retryBase <= retryMax else {
            throw .invalidSetting(Settings.retryMax.declaration.name, reason: "must not be below CROCANTE_RETRY_BASE_MS")
        }
        revocationMaxAge = try reader.value(Settings.revocationMaxAge)
        logLevel = try reader.value(Settings.logLevel)
        var warnings = reader.warnings + tlsWarnings
        if let wedge = environment[Self.testWedgeVariable], !wedge.isEmpty {
            guard wedge.hasPrefix("/"), ![logoutPath, statusPath, pingPath].contains(wedge) else {
                throw .invalidSetting(Self.testWedgeVariable, reason: "must be an absolute path unlike the other paths")
            }
            testWedgePath = wedge
            warnings.append("\(Self.testWedgeVariable) is set: a request to it wedges every worker (for tests only)")
        }
        self.warnings = warnings
        let tlsLines = backendTLS?.summary(now: now).lines ?? []
        let outboxLines = outbox.map { ["outbox=\($0)"] } ?? []
        summary = (reader.shown + ["backend URL=\(Self.redactingCredentials(backendURL))"] + outboxLines + tlsLines
            + tlsWarnings.map { "warning: " + $0 }).joined(separator: "\n")
    }

    /// The TLS settings read and loaded: nil for an http gateway, which may set none of them.
    private static func readBackendTLS(
        _ reader: inout SettingReader, gateway: String, readFile: (String) -> String?, now: Date
    ) throws(CrocanteError) -> (BackendTLS?, [String]) {
        func pem(_ setting: Setting<String?>) throws(CrocanteError) -> BackendTLS.PEM? {
            let name = setting.declaration.name
            guard let path = try reader.value(setting) else { return nil }
            guard let text = readFile(path) else {
                throw .invalidSetting(name, reason: "cannot read \(SettingReader.quoted(path))")
            }
            return BackendTLS.PEM(text: text, source: .init(setting: name, origin: SettingReader.quoted(path)))
        }
        let ca = try pem(Settings.backendCAFile)
        let certificate = try pem(Settings.backendClientCertificateFile)
        let key = try reader.secretText(named: Settings.backendClientKey).map {
            BackendTLS.PEM(text: $0.value, source: .init(setting: $0.setting, origin: $0.origin))
        }
        let isHTTPS = gateway.lowercased().hasPrefix("https://")
        guard isHTTPS else {
            if let given = [ca?.source, certificate?.source, key?.source].compactMap({ $0 }).first {
                throw .invalidSetting(given.setting, reason: "applies only to an https:// API_GATEWAY")
            }
            return (nil, [])
        }
        let tls = try BackendTLS(ca: ca, clientCertificate: certificate, clientKey: key)
        return (tls, tls.summary(now: now).warnings)
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
