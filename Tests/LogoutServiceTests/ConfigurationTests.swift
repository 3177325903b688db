import Testing

import LogoutCore
import RevocationOutbox
@testable import LogoutService

@Suite struct ConfigurationTests {
    static let secret = "current-secret-VALUE-0123456789-abcdef"
    static let previousSecret = "previous-secret-VALUE-0123456789-abcde"

    /// The least an operator must set.
    static let minimal: [String: String] = [
        "SESSION_SECRET": secret,
        "API_GATEWAY": "https://api.example.com",
        "EP_AUTH_LOGOUT": "/auth/logout",
    ]

    static func environment(_ changes: [String: String?]) -> [String: String] {
        var environment = minimal
        for (name, value) in changes { environment[name] = value }
        return environment
    }

    @Test func minimalEnvironmentGetsTheDocumentedDefaults() throws {
        let configuration = try Configuration(environment: Self.minimal, processorCount: 4)
        #expect(configuration.previousSessionSecret == nil)
        #expect(configuration.sessionSecrets.count == 1)
        #expect(configuration.backendURL == "https://api.example.com/auth/logout")
        #expect(configuration.appEnvironment == .production)
        #expect(configuration.secureCookie)
        #expect(configuration.listen == .automatic)
        #expect(configuration.socketMode == 0o660)
        #expect(configuration.workers == 8)
        #expect(configuration.logoutPath == "/api/auth/logout")
        #expect(configuration.queueCapacity == 10_000)
        #expect(configuration.backendConcurrency == 16)
        #expect(configuration.backendConnectTimeout == .milliseconds(1000))
        #expect(configuration.backendTimeout == .milliseconds(5000))
        #expect(configuration.drainTimeout == .milliseconds(10_000))
        #expect(configuration.logLevel == .info)
    }

    @Test func everySettingIsRead() throws {
        let configuration = try Configuration(
            environment: Self.environment([
                "SESSION_SECRET_PREVIOUS": Self.previousSecret,
                "APP_ENV": "staging",
                "CROCANTE_LISTEN": "unix:/run/crocante/logout.sock",
                "CROCANTE_SOCKET_MODE": "0600",
                "CROCANTE_WORKERS": "3",
                "CROCANTE_LOGOUT_PATH": "/logout",
                "CROCANTE_QUEUE_CAPACITY": "5",
                "CROCANTE_BACKEND_CONCURRENCY": "2",
                "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS": "250",
                "CROCANTE_BACKEND_TIMEOUT_MS": "750",
                "CROCANTE_DRAIN_TIMEOUT_MS": "0",
                "CROCANTE_LOG_LEVEL": "debug",
            ]),
            processorCount: 4)
        #expect(configuration.previousSessionSecret != nil)
        #expect(configuration.sessionSecrets.count == 2)
        #expect(configuration.appEnvironment == .staging)
        #expect(configuration.listen == .unix(path: "/run/crocante/logout.sock"))
        #expect(configuration.socketMode == 0o600)
        #expect(configuration.workers == 3)
        #expect(configuration.logoutPath == "/logout")
        #expect(configuration.queueCapacity == 5)
        #expect(configuration.backendConcurrency == 2)
        #expect(configuration.backendConnectTimeout == .milliseconds(250))
        #expect(configuration.backendTimeout == .milliseconds(750))
        #expect(configuration.drainTimeout == .zero)
        #expect(configuration.logLevel == .debug)
    }

    @Test func secretsOpenCookiesCurrentFirstThenPrevious() throws {
        let configuration = try Configuration(
            environment: Self.environment(["SESSION_SECRET_PREVIOUS": Self.previousSecret]), processorCount: 1)
        let opener = SealedSession.Opener(secrets: configuration.sessionSecrets)
        let current = try SealedSession.seal(
            plaintext: Array("current-token".utf8), with: SessionSecret(Self.secret, setting: "test"))
        let previous = try SealedSession.seal(
            plaintext: Array("previous-token".utf8), with: SessionSecret(Self.previousSecret, setting: "test"))
        #expect(opener.token(fromCookieValue: Array(current.utf8))?.value == "current-token")
        #expect(opener.token(fromCookieValue: Array(previous.utf8))?.value == "previous-token")
    }

    // MARK: Errors

    enum Expected: Sendable, CustomStringConvertible {
        case missing(String)
        case invalid(String)

        var description: String {
            switch self {
            case .missing(let name): return "missing \(name)"
            case .invalid(let name): return "invalid \(name)"
            }
        }
    }

    /// A change to the minimal environment (nil removes the variable), and the error it must cause.
    static let errors: [(String, [String: String?], Expected)] = [
        ("no secret", ["SESSION_SECRET": nil], .missing("SESSION_SECRET")),
        ("empty secret", ["SESSION_SECRET": ""], .missing("SESSION_SECRET")),
        ("31-byte secret", ["SESSION_SECRET": String(repeating: "s", count: 31)], .invalid("SESSION_SECRET")),
        ("the origin's fallback secret", ["SESSION_SECRET": "default-secret"], .invalid("SESSION_SECRET")),
        ("short previous secret", ["SESSION_SECRET_PREVIOUS": "short-previous-secret"], .invalid("SESSION_SECRET_PREVIOUS")),
        ("fallback previous secret", ["SESSION_SECRET_PREVIOUS": "default-secret"], .invalid("SESSION_SECRET_PREVIOUS")),
        ("no gateway", ["API_GATEWAY": nil], .missing("API_GATEWAY")),
        ("ftp gateway", ["API_GATEWAY": "ftp://x"], .invalid("API_GATEWAY")),
        ("gateway that is not a URL", ["API_GATEWAY": "not a url"], .invalid("API_GATEWAY")),
        ("gateway without a scheme", ["API_GATEWAY": "api.example.com"], .invalid("API_GATEWAY")),
        ("gateway without a host", ["API_GATEWAY": "https://"], .invalid("API_GATEWAY")),
        ("gateway with a query", ["API_GATEWAY": "https://api.example.com/v1?x=1"], .invalid("API_GATEWAY")),
        ("gateway with a fragment", ["API_GATEWAY": "https://api.example.com/#x"], .invalid("API_GATEWAY")),
        ("no endpoint", ["EP_AUTH_LOGOUT": nil], .missing("EP_AUTH_LOGOUT")),
        ("endpoint of slashes only", ["EP_AUTH_LOGOUT": "/"], .invalid("EP_AUTH_LOGOUT")),
        ("endpoint with a space", ["EP_AUTH_LOGOUT": "/auth/log out"], .invalid("EP_AUTH_LOGOUT")),
        ("unknown APP_ENV", ["APP_ENV": "prod"], .invalid("APP_ENV")),
        ("APP_ENV in capitals", ["APP_ENV": "Production"], .invalid("APP_ENV")),
        ("listen on all interfaces without a port", ["CROCANTE_LISTEN": "0.0.0.0"], .invalid("CROCANTE_LISTEN")),
        ("listen on a host name", ["CROCANTE_LISTEN": "localhost:9000"], .invalid("CROCANTE_LISTEN")),
        ("listen on a relative unix path", ["CROCANTE_LISTEN": "unix:relative"], .invalid("CROCANTE_LISTEN")),
        ("no workers", ["CROCANTE_WORKERS": "0"], .invalid("CROCANTE_WORKERS")),
        ("too many workers", ["CROCANTE_WORKERS": "2000"], .invalid("CROCANTE_WORKERS")),
        ("workers not a number", ["CROCANTE_WORKERS": "abc"], .invalid("CROCANTE_WORKERS")),
        ("socket mode not octal", ["CROCANTE_SOCKET_MODE": "999"], .invalid("CROCANTE_SOCKET_MODE")),
        ("socket mode too large", ["CROCANTE_SOCKET_MODE": "1000"], .invalid("CROCANTE_SOCKET_MODE")),
        ("unknown log level", ["CROCANTE_LOG_LEVEL": "verbose"], .invalid("CROCANTE_LOG_LEVEL")),
        ("logout path without a slash", ["CROCANTE_LOGOUT_PATH": "logout"], .invalid("CROCANTE_LOGOUT_PATH")),
        ("logout path with a query", ["CROCANTE_LOGOUT_PATH": "/logout?x"], .invalid("CROCANTE_LOGOUT_PATH")),
        ("no queue", ["CROCANTE_QUEUE_CAPACITY": "0"], .invalid("CROCANTE_QUEUE_CAPACITY")),
        ("no backend concurrency", ["CROCANTE_BACKEND_CONCURRENCY": "0"], .invalid("CROCANTE_BACKEND_CONCURRENCY")),
        ("zero connect timeout", ["CROCANTE_BACKEND_CONNECT_TIMEOUT_MS": "0"], .invalid("CROCANTE_BACKEND_CONNECT_TIMEOUT_MS")),
        ("negative drain timeout", ["CROCANTE_DRAIN_TIMEOUT_MS": "-1"], .invalid("CROCANTE_DRAIN_TIMEOUT_MS")),
        ("outbox that is not postgres", ["CROCANTE_OUTBOX": "mysql://u:pw@db/logout"], .invalid("CROCANTE_OUTBOX")),
        ("outbox without a database", ["CROCANTE_OUTBOX": "postgres://u:pw@db"], .invalid("CROCANTE_OUTBOX")),
        ("outbox file missing", ["CROCANTE_OUTBOX_FILE": "/nonexistent/outbox"], .invalid("CROCANTE_OUTBOX_FILE")),
    ]

    @Test(arguments: errors)
    func refusesABadSetting(label: String, changes: [String: String?], expected: Expected) throws {
        let environment = Self.environment(changes)
        let thrown = #expect(throws: CrocanteError.self) {
            _ = try Configuration(environment: environment, processorCount: 4)
        }
        let error = try #require(thrown)
        switch (expected, error) {
        case (.missing(let name), _):
            #expect(error == .missingSetting(name))
        case (.invalid(let name), .invalidSetting(let actual, reason: _)):
            #expect(actual == name)
        case (.invalid, _):
            Issue.record("expected \(expected), got \(error)")
        }
        #expect(error.exitCode == 78)
        // No description names a secret's value, whichever setting is at fault.
        for (name, value) in environment where name.contains("SECRET") && !value.isEmpty {
            #expect(!error.description.contains(value), "\(error.description)")
        }
        #expect(!error.description.contains(Self.secret))
    }

    /// The outbox URL is a secret (it holds the database password): read from its file like the
    /// session secret, and shown redacted.
    @Test func outboxURLComesFromItsFileAndIsShownWithoutThePassword() throws {
        let url = "postgres://crocante:db-password-0123@db.internal:5432/logout?sslmode=disable"
        let configuration = try Configuration(
            environment: Self.environment(["CROCANTE_OUTBOX_FILE": "/run/credentials/outbox"]), processorCount: 1,
            readFile: { $0 == "/run/credentials/outbox" ? url + "\n" : nil })
        #expect(configuration.outbox?.endpoint == .tcp(host: "db.internal", port: 5432))
        #expect(configuration.outbox?.password == "db-password-0123")
        #expect(!configuration.summary.contains("db-password-0123"))
        #expect(configuration.summary.contains("outbox=postgres://crocante:***@db.internal:5432/logout?sslmode=disable"))
        #expect(configuration.summary.contains("CROCANTE_OUTBOX=(set from \"/run/credentials/outbox\", redacted)"))
    }

    @Test func summaryRedactsTheSecrets() throws {
        let configuration = try Configuration(
            environment: Self.environment(["SESSION_SECRET_PREVIOUS": Self.previousSecret]), processorCount: 1)
        #expect(!configuration.summary.contains(Self.secret))
        #expect(!configuration.summary.contains(Self.previousSecret))
        #expect(!"\(configuration.sessionSecret)".contains(Self.secret))
        #expect(configuration.summary.contains("backend URL=https://api.example.com/auth/logout"))
    }

    // MARK: The origin's NEXT_PUBLIC_ spellings

    @Test func nextPublicSpellingsAreRead() throws {
        let configuration = try Configuration(
            environment: [
                "SESSION_SECRET": Self.secret,
                "NEXT_PUBLIC_API_GATEWAY": "https://public.example.com/",
                "NEXT_PUBLIC_EP_AUTH_LOGOUT": "auth/logout",
                "NEXT_PUBLIC_APP_ENV": "development",
            ],
            processorCount: 1)
        #expect(configuration.backendURL == "https://public.example.com/auth/logout")
        #expect(configuration.appEnvironment == .development)
        #expect(!configuration.secureCookie)
    }

    @Test func unprefixedNameWinsOverNextPublic() throws {
        let configuration = try Configuration(
            environment: Self.environment([
                "NEXT_PUBLIC_API_GATEWAY": "https://public.example.com",
                "NEXT_PUBLIC_EP_AUTH_LOGOUT": "/public/logout",
                "APP_ENV": "production",
                "NEXT_PUBLIC_APP_ENV": "development",
            ]),
            processorCount: 1)
        #expect(configuration.backendURL == "https://api.example.com/auth/logout")
        #expect(configuration.appEnvironment == .production)
    }

    @Test func emptyUnprefixedNameFallsBackToNextPublic() throws {
        let configuration = try Configuration(
            environment: Self.environment(["API_GATEWAY": "", "NEXT_PUBLIC_API_GATEWAY": "https://public.example.com"]),
            processorCount: 1)
        #expect(configuration.backendURL == "https://public.example.com/auth/logout")
    }

    /// `NEXT_PUBLIC_*` variables are inlined into the browser bundle by Next.js; a secret under that
    /// name is public, and `SESSION_SECRET` is documented as server-only with no such spelling.
    @Test(arguments: ["SESSION_SECRET", "SESSION_SECRET_PREVIOUS"])
    func secretsHaveNoNextPublicSpelling(name: String) throws {
        var environment = Self.minimal
        environment["NEXT_PUBLIC_" + name] = Self.previousSecret
        if name == "SESSION_SECRET" { environment["SESSION_SECRET"] = nil }
        let result = Result { () throws(CrocanteError) in try Configuration(environment: environment, processorCount: 1) }
        switch (name, result) {
        case ("SESSION_SECRET", .failure(let error)):
            #expect(error == .missingSetting("SESSION_SECRET"))
        case ("SESSION_SECRET_PREVIOUS", .success(let configuration)):
            #expect(configuration.previousSessionSecret == nil, "NEXT_PUBLIC_SESSION_SECRET_PREVIOUS was accepted")
        default:
            Issue.record("NEXT_PUBLIC_\(name) was accepted as \(name)")
        }
    }

    // MARK: Joining the backend URL

    static let joins: [(String, String, String)] = [
        ("https://gw.example.com", "auth/logout", "https://gw.example.com/auth/logout"),
        ("https://gw.example.com", "/auth/logout", "https://gw.example.com/auth/logout"),
        ("https://gw.example.com/", "auth/logout", "https://gw.example.com/auth/logout"),
        ("https://gw.example.com/", "/auth/logout", "https://gw.example.com/auth/logout"),
        ("https://gw.example.com/api", "/v1/logout", "https://gw.example.com/api/v1/logout"),
        ("https://gw.example.com/api/", "v1/logout", "https://gw.example.com/api/v1/logout"),
        ("http://127.0.0.1:8080", "/logout", "http://127.0.0.1:8080/logout"),
        ("http://127.0.0.1:8080/", "logout/", "http://127.0.0.1:8080/logout/"),
    ]

    @Test(arguments: joins)
    func joinsGatewayAndEndpointWithExactlyOneSlash(gateway: String, endpoint: String, expected: String) throws {
        #expect(Configuration.joinURL(gateway: gateway, endpoint: endpoint) == expected)
        let configuration = try Configuration(
            environment: Self.environment(["API_GATEWAY": gateway, "EP_AUTH_LOGOUT": endpoint]), processorCount: 1)
        #expect(configuration.backendURL == expected)
    }

    // MARK: Listen addresses

    static let listenAddresses: [(String, ListenAddress?)] = [
        ("auto", .automatic),
        ("unix:/run/x.sock", .unix(path: "/run/x.sock")),
        ("unix:/" + String(repeating: "p", count: 106), .unix(path: "/" + String(repeating: "p", count: 106))),
        ("127.0.0.1:9000", .tcp(host: "127.0.0.1", port: 9000)),
        ("0.0.0.0:9000", .tcp(host: "0.0.0.0", port: 9000)),
        ("10.1.2.3:65535", .tcp(host: "10.1.2.3", port: 65535)),
        ("[::1]:9000", .tcp(host: "::1", port: 9000)),
        ("[fd00::1]:1", .tcp(host: "fd00::1", port: 1)),
        ("", nil),
        ("AUTO", nil),
        ("automatic", nil),
        ("0.0.0.0", nil),
        ("localhost:9000", nil),
        ("unix:relative", nil),
        ("unix:", nil),
        ("unix:/" + String(repeating: "p", count: 107), nil),
        ("127.0.0.1", nil),
        ("127.0.0.1:", nil),
        ("127.0.0.1:0", nil),
        ("127.0.0.1:65536", nil),
        ("127.0.0.1:port", nil),
        (":9000", nil),
        ("256.0.0.1:9000", nil),
        ("::1:9000", nil),
        ("[::1]", nil),
        ("[::1:9000", nil),
        ("[127.0.0.1]:9000", nil),
        ("::1]:9000", nil),
    ]

    @Test(arguments: listenAddresses)
    func parsesListenAddresses(text: String, expected: ListenAddress?) {
        #expect(ListenAddress(parsing: text) == expected)
    }

    @Test(arguments: ["auto", "unix:/run/x.sock", "127.0.0.1:9000", "[::1]:9000"])
    func listenAddressDescriptionRoundTrips(text: String) throws {
        let address = try #require(ListenAddress(parsing: text))
        #expect(address.description == text)
    }

    @Test func fallbackListensOnLoopbackOnly() {
        #expect(ListenAddress.fallback == .tcp(host: "127.0.0.1", port: 9000))
    }

    // MARK: Defaults that depend on the environment or the machine

    @Test(arguments: [
        ("production", true), ("staging", false), ("development", false), ("", true),
    ])
    func onlyProductionClearsTheCookieAsSecure(appEnvironment: String, secure: Bool) throws {
        let configuration = try Configuration(environment: Self.environment(["APP_ENV": appEnvironment]), processorCount: 1)
        #expect(configuration.secureCookie == secure)
    }

    @Test(arguments: [(0, 2), (1, 2), (2, 4), (4, 8), (64, 128)])
    func workersDefaultToTwicePerProcessor(processorCount: Int, workers: Int) throws {
        #expect(try Configuration(environment: Self.minimal, processorCount: processorCount).workers == workers)
    }

    @Test(arguments: ["1", "1024"])
    func workerBoundsAreAccepted(text: String) throws {
        let configuration = try Configuration(environment: Self.environment(["CROCANTE_WORKERS": text]), processorCount: 1)
        #expect(configuration.workers == Int(text))
    }
}

@Suite struct CredentialRedactionTests {
    @Test(arguments: [
        ("http://svc:pass@backend:8080/auth/logout", "http://***@backend:8080/auth/logout"),
        ("https://token@backend/x", "https://***@backend/x"),
        ("http://backend/a@b", "http://backend/a@b"),
        ("http://127.0.0.1:9/auth/logout", "http://127.0.0.1:9/auth/logout"),
    ])
    func userinfoIsRedacted(url: String, shown: String) {
        #expect(Configuration.redactingCredentials(url) == shown)
    }
}
