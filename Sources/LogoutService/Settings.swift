import FoundationEssentials
import Logging
import LogoutCore

/// Every setting crocante-logout reads, declared once, in the order the docs show them.
public enum Settings {
    /// The declarations in documentation order: parsing reads each of these, and `--help`,
    /// `check-config`, the README's table and `deploy/env.example` are rendered from this list.
    public static let all: [SettingDeclaration] = [
        sessionSecret, previousSessionSecret, apiGateway.declaration, logoutEndpoint.declaration,
        appEnvironment.declaration, listen.declaration, socketMode.declaration, workers.declaration,
        keepConnections.declaration, keepaliveIdle.declaration,
        logoutPath.declaration, statusPath.declaration, pingPath.declaration, queueCapacity.declaration,
        backendConcurrency.declaration, backendConnectTimeout.declaration, backendTimeout.declaration,
        backendCAFile.declaration, backendClientCertificateFile.declaration, backendClientKey, backendProxy.declaration,
        drainTimeout.declaration, requestTimeout.declaration, allowedClients.declaration, allowedPeers.declaration,
        secretMismatchPercent.declaration, clearCookieVariants.declaration, clearSiteData.declaration,
        spoolDirectory.declaration,
        spoolSync.declaration, spoolMaxBytes.declaration, outbox, dedupWindow.declaration, retryBase.declaration,
        retryMax.declaration, revocationMaxAge.declaration, logLevel.declaration,
    ]

    static let sessionSecret = SettingDeclaration(
        name: "SESSION_SECRET", flag: nil, acceptsNextPublicSpelling: false, credential: "session_secret",
        accepted: "at least 32 bytes; `default-secret` is refused", defaultText: "required",
        help: "The login service's secret: cookies are opened with its SHA-256.", example: nil)

    static let previousSessionSecret = SettingDeclaration(
        name: "SESSION_SECRET_PREVIOUS", flag: nil, acceptsNextPublicSpelling: false,
        credential: "session_secret_previous", accepted: "as `SESSION_SECRET`", defaultText: "unset",
        help: "A second secret that still opens cookies, for rotation.", example: nil)

    static let apiGateway = Setting<String>(
        declaration: SettingDeclaration(
            name: "API_GATEWAY", flag: "api-gateway", acceptsNextPublicSpelling: true, credential: nil,
            accepted: "`http://` or `https://` URL: a host, a port 1–65535, a path without `.`/`..` or encoded dots; no `user:pw@`, query or fragment", defaultText: "required",
            help: "Backend base URL; one trailing `/` is dropped before joining.", example: "https://api.example.com/"),
        defaultValue: { _ in nil },
        parse: { text in
            // The same checks for check-config and serve: nothing that would crash the HTTP client
            // or be sent elsewhere than it reads (BackendURL says why for each).
            do throws(CrocanteError) {
                _ = try BackendURL.gateway(text, setting: "API_GATEWAY")
                return .success(text)
            } catch {
                return .failure(.init(reason: error.reason))
            }
        },
        render: { Configuration.redactingCredentials($0) })

    static let logoutEndpoint = Setting<String>(
        declaration: SettingDeclaration(
            name: "EP_AUTH_LOGOUT", flag: "logout-endpoint", acceptsNextPublicSpelling: true, credential: nil,
            accepted: "a path of visible ASCII: no URL or `//`, fragment, `.`/`..` segment or encoded dot", defaultText: "required",
            help: "Backend logout path on the gateway, joined with exactly one `/`.", example: "auth/logout"),
        defaultValue: { _ in nil },
        parse: { text in
            do throws(CrocanteError) {
                return .success(try BackendURL.endpoint(text, setting: "EP_AUTH_LOGOUT"))
            } catch {
                return .failure(.init(reason: error.reason))
            }
        },
        render: { $0 })

    static let appEnvironment = Setting<Configuration.AppEnvironment>.choice(
        SettingDeclaration(
            name: "APP_ENV", flag: "app-env", acceptsNextPublicSpelling: true, credential: nil,
            accepted: "`development`, `staging`, `production`", defaultText: "`production`",
            help: "The deployment; `production` marks the cleared cookie `Secure`.", example: nil),
        default: .production, { Configuration.AppEnvironment(rawValue: $0) },
        render: { "\($0.rawValue) (cleared cookie \($0 == .production ? "is" : "is not") Secure)" })

    static let listen = Setting<ListenAddress>.choice(
        SettingDeclaration(
            name: "CROCANTE_LISTEN", flag: "listen", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "`auto`, `unix:/path`, `127.0.0.1:9000`, `[::1]:9000`", defaultText: "`auto`",
            help: "Where FastCGI connections come from; `auto` takes the socket systemd or spawn-fcgi hands over, else `127.0.0.1:9000`.",
            example: nil),
        default: .automatic, { ListenAddress(parsing: $0) }, render: { $0.description })

    static let socketMode = Setting<UInt32>.choice(
        SettingDeclaration(
            name: "CROCANTE_SOCKET_MODE", flag: "socket-mode", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "octal, up to `0777`", defaultText: "`0660`",
            help: "Permissions of a unix socket the responder creates itself.", example: nil),
        default: 0o660, { UInt32($0, radix: 8).flatMap { $0 <= 0o777 ? $0 : nil } }, render: { "0" + String($0, radix: 8) })

    static let workers = Setting<Int>.integer(
        SettingDeclaration(
            name: "CROCANTE_WORKERS", flag: "workers", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "1–1024", defaultText: "2 × processors",
            help: "FastCGI worker threads, each serving one connection at a time.", example: nil),
        in: 1...1024, default: { min(1024, max(2, 2 * $0.processorCount)) })

    static let keepConnections = Setting<Bool>.choice(
        SettingDeclaration(
            name: "CROCANTE_KEEP_CONNECTIONS", flag: "keep-connections", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "`off`, `on`", defaultText: "`off`",
            help: "`on`: honour nginx's `fastcgi_keep_conn on`; idle kept connections wait in one epoll set all workers share, and the first free worker serves the next request on any of them; `off`: close after every answer.",
            example: nil),
        default: false, { ["off": false, "on": true][$0] }, render: { $0 ? "on" : "off" })

    static let keepaliveIdle = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_KEEPALIVE_IDLE_MS", flag: "keepalive-idle-ms", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "1–3600000 ms", defaultText: "`75000`",
            help: "With kept connections: how long one may stay idle before it is closed; keep it above nginx's upstream `keepalive_timeout` (60 s by default), so that nginx always closes first.",
            example: nil),
        in: 1...3_600_000, default: 75_000)

    static let logoutPath = Setting<String>.servedPath(
        SettingDeclaration(
            name: "CROCANTE_LOGOUT_PATH", flag: "logout-path", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "absolute path", defaultText: "`/api/auth/logout`", help: "The logout path served.", example: nil),
        default: "/api/auth/logout")

    static let statusPath = Setting<String>.servedPath(
        SettingDeclaration(
            name: "CROCANTE_STATUS_PATH", flag: nil, acceptsNextPublicSpelling: false, credential: nil,
            accepted: "absolute path", defaultText: "`/crocante-logout/status`",
            help: "Counters as JSON, or Prometheus text with `?format=prometheus`.", example: nil),
        default: "/crocante-logout/status")

    static let pingPath = Setting<String>.servedPath(
        SettingDeclaration(
            name: "CROCANTE_PING_PATH", flag: nil, acceptsNextPublicSpelling: false, credential: nil,
            accepted: "absolute path", defaultText: "`/crocante-logout/ping`", help: "Liveness: answers `200 pong`.",
            example: nil),
        default: "/crocante-logout/ping")

    static let queueCapacity = Setting<Int>.integer(
        SettingDeclaration(
            name: "CROCANTE_QUEUE_CAPACITY", flag: "queue-capacity", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "1–1000000", defaultText: "`10000`",
            help: "Revocations held in memory waiting for a backend slot; beyond, they park in the spool until there is room, or without a spool are dropped and logged.", example: nil),
        in: 1...1_000_000, default: { _ in 10_000 })

    static let backendConcurrency = Setting<Int>.integer(
        SettingDeclaration(
            name: "CROCANTE_BACKEND_CONCURRENCY", flag: "backend-concurrency", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "1–1024", defaultText: "`16`",
            help: "Backend calls (and pooled keep-alive connections) at once.", example: nil),
        in: 1...1024, default: { _ in 16 })

    static let backendConnectTimeout = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS", flag: "backend-connect-timeout-ms",
            acceptsNextPublicSpelling: false, credential: nil, accepted: "1–60000 ms", defaultText: "`1000`",
            help: "Deadline to connect to the backend.", example: nil),
        in: 1...60_000, default: 1000)

    static let backendTimeout = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_BACKEND_TIMEOUT_MS", flag: "backend-timeout-ms", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "1–300000 ms", defaultText: "`5000`",
            help: "Deadline for a whole backend call, connecting included.", example: nil),
        in: 1...300_000, default: 5000)

    static let drainTimeout = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_DRAIN_TIMEOUT_MS", flag: "drain-timeout-ms", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "0–600000 ms", defaultText: "`10000`",
            help: "On SIGTERM, how long queued revocations may still run (keep below the unit's `TimeoutStopSec=30`).",
            example: nil),
        in: 0...600_000, default: 10_000)

    static let spoolDirectory = Setting<String?>(
        declaration: SettingDeclaration(
            name: "CROCANTE_SPOOL_DIR", flag: "spool-dir", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "absolute path of a directory only this user can enter", defaultText: "`$STATE_DIRECTORY`, else unset",
            help: "Where pending revocations are kept (sealed) so that a crash, a restart or a deploy loses none; unset: memory only.",
            example: nil),
        defaultValue: { .some($0.stateDirectory) },
        parse: { path in
            path.hasPrefix("/") && !path.utf8.contains(0) ? .success(path) : .failure(.init(reason: "is not an absolute path"))
        },
        render: { $0 ?? "(unset: memory only, revocations do not survive a restart)" })

    static let spoolSync = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_SPOOL_SYNC_MS", flag: "spool-sync-ms", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "0–10000 ms", defaultText: "`50`",
            help: "How often the spool is flushed to disk (`fdatasync`), off the request path: a power loss loses at most this window.",
            example: nil),
        in: 0...10_000, default: 50)

    static let spoolMaxBytes = Setting<Int>.integer(
        SettingDeclaration(
            name: "CROCANTE_SPOOL_MAX_BYTES", flag: "spool-max-bytes", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "1048576–1099511627776", defaultText: "`268435456`",
            help: "Size limit of the spool's files; past it new revocations are kept in memory only, counted and logged.",
            example: nil),
        in: 1 << 20...1 << 40, default: { _ in 256 << 20 })

    static let dedupWindow = Setting<Duration>.duration(
        SettingDeclaration(
            name: "CROCANTE_DEDUP_WINDOW", flag: "dedup-window", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "0s–24h", defaultText: "`5m`",
            help: "A token pending, or revoked within this window, is not queued again: a replayed cookie costs one lookup.",
            example: nil),
        in: .zero ... .seconds(86_400), default: .seconds(300))

    static let retryBase = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_RETRY_BASE_MS", flag: "retry-base-ms", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "1–600000 ms", defaultText: "`250`",
            help: "First retry backoff; doubles per failure, with full jitter, up to the maximum.", example: nil),
        in: 1...600_000, default: 250)

    static let retryMax = Setting<Duration>.milliseconds(
        SettingDeclaration(
            name: "CROCANTE_RETRY_MAX_MS", flag: "retry-max-ms", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "1–86400000 ms", defaultText: "`60000`",
            help: "Longest wait between two attempts, `Retry-After` included.", example: nil),
        in: 1...86_400_000, default: 60_000)

    static let revocationMaxAge = Setting<Duration>.duration(
        SettingDeclaration(
            name: "CROCANTE_REVOCATION_MAX_AGE", flag: "revocation-max-age", acceptsNextPublicSpelling: false,
            credential: nil, accepted: "1m–30d", defaultText: "`24h`",
            help: "Retrying stops this long after the logout, unless the token is a JWT whose `exp` says sooner.", example: nil),
        in: .seconds(60) ... .seconds(30 * 86_400), default: .seconds(86_400))

    static let logLevel = Setting<Logger.Level>.choice(
        SettingDeclaration(
            name: "CROCANTE_LOG_LEVEL", flag: "log-level", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "`trace` `debug` `info` `notice` `warning` `error` `critical`", defaultText: "`info`",
            help: "The least severe log line written to stderr.", example: nil),
        default: .info, { Logger.Level(rawValue: $0) }, render: { $0.rawValue })
}
