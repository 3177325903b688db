import ArgumentParser
import FastCGI
import FoundationEssentials
import LogoutCore

#if canImport(Glibc)
import Glibc
#endif

/// Entry point: parse the command line, then hand over to the chosen subcommand.
@main
struct CrocanteLogoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crocante-logout",
        abstract: "FastCGI responder for POST /api/auth/logout behind nginx.",
        discussion: """
            Every logout answers 200 {"success":true} and clears the crocante_session cookie.
            When the cookie holds a session, its token is revoked at the backend afterwards,
            without the response waiting for it.

            Settings come from the environment (see the README for every variable); a flag
            overrides the variable of the same meaning. Bad settings stop start-up with one
            line on stderr and exit status 78; a socket that cannot be opened, 71.
            """,
        subcommands: [Serve.self, CheckConfig.self, Seal.self],
        defaultSubcommand: Serve.self
    )
}

/// Flags that override environment variables, shared by `serve` and `check-config`.
struct SettingOptions: ParsableArguments {
    @Option(help: "Where to take FastCGI connections: auto, unix:/path, 127.0.0.1:9000 or [::1]:9000. (CROCANTE_LISTEN, default auto)")
    var listen: String?

    @Option(help: "Octal permissions of a unix socket this process creates. (CROCANTE_SOCKET_MODE, default 0660)")
    var socketMode: String?

    @Option(help: "FastCGI worker threads. (CROCANTE_WORKERS, default 2 x processors)")
    var workers: String?

    @Option(help: "Path served. (CROCANTE_LOGOUT_PATH, default /api/auth/logout)")
    var logoutPath: String?

    @Option(help: "Backend gateway URL. (API_GATEWAY or NEXT_PUBLIC_API_GATEWAY, required)")
    var apiGateway: String?

    @Option(help: "Backend logout path on the gateway. (EP_AUTH_LOGOUT or NEXT_PUBLIC_EP_AUTH_LOGOUT, required)")
    var logoutEndpoint: String?

    @Option(help: "development, staging or production; production marks the cleared cookie Secure. (APP_ENV, default production)")
    var appEnv: String?

    @Option(help: "Revocations that may wait for a backend slot. (CROCANTE_QUEUE_CAPACITY, default 10000)")
    var queueCapacity: String?

    @Option(help: "Backend calls at once. (CROCANTE_BACKEND_CONCURRENCY, default 16)")
    var backendConcurrency: String?

    @Option(help: "Backend connect deadline in ms. (CROCANTE_BACKEND_CONNECT_TIMEOUT_MS, default 1000)")
    var backendConnectTimeoutMs: String?

    @Option(help: "Backend whole-call deadline in ms. (CROCANTE_BACKEND_TIMEOUT_MS, default 5000)")
    var backendTimeoutMs: String?

    @Option(help: "Time given to queued revocations at shutdown, in ms. (CROCANTE_DRAIN_TIMEOUT_MS, default 10000)")
    var drainTimeoutMs: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. (CROCANTE_LOG_LEVEL, default info)")
    var logLevel: String?

    /// The process environment with every given flag written over its variable.
    /// Secrets have no flags: a command line is visible to every user of the host.
    func environment(_ base: [String: String]) -> [String: String] {
        let overrides: [(String, String?)] = [
            ("CROCANTE_LISTEN", listen), ("CROCANTE_SOCKET_MODE", socketMode), ("CROCANTE_WORKERS", workers),
            ("CROCANTE_LOGOUT_PATH", logoutPath), ("API_GATEWAY", apiGateway), ("EP_AUTH_LOGOUT", logoutEndpoint),
            ("APP_ENV", appEnv), ("CROCANTE_QUEUE_CAPACITY", queueCapacity),
            ("CROCANTE_BACKEND_CONCURRENCY", backendConcurrency),
            ("CROCANTE_BACKEND_CONNECT_TIMEOUT_MS", backendConnectTimeoutMs),
            ("CROCANTE_BACKEND_TIMEOUT_MS", backendTimeoutMs), ("CROCANTE_DRAIN_TIMEOUT_MS", drainTimeoutMs),
            ("CROCANTE_LOG_LEVEL", logLevel),
        ]
        var environment = base
        for case (let name, let value?) in overrides { environment[name] = value }
        return environment
    }

    /// The validated configuration, or exit with the error's status after one line on stderr.
    func configuration() throws -> Configuration {
        let environment = environment(ProcessInfo.processInfo.environment)
        return try orExit { () throws(CrocanteError) in
            try Configuration(environment: environment, processorCount: ProcessInfo.processInfo.activeProcessorCount)
        }
    }
}

/// Runs `body`; a `CrocanteError` becomes one stderr line and the error's exit status.
func orExit<Value>(_ body: () throws(CrocanteError) -> Value) throws -> Value {
    do {
        return try body()
    } catch {
        var line = "crocante-logout: \(error)\n"
        line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        throw ExitCode(error.exitCode)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve logouts until SIGTERM or SIGINT (the default subcommand).",
        discussion: """
            On SIGTERM or SIGINT: stop accepting, finish the requests being served, give queued
            revocations up to the drain deadline, then exit 0.
            """
    )

    @OptionGroup var settings: SettingOptions

    func run() throws {
        // Before any thread exists, so that every thread inherits the blocked mask.
        ShutdownSignals.block()
        let configuration = try settings.configuration()
        let application = try orExit { () throws(CrocanteError) in
            try buildApplication(configuration: configuration, environment: ProcessInfo.processInfo.environment)
        }
        try orExit { () throws(CrocanteError) in try application.runUntilSignalled() }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the settings, print them (secrets redacted) and exit: 0 if usable, 78 if not."
    )

    @OptionGroup var settings: SettingOptions

    func run() throws {
        let configuration = try settings.configuration()
        print(configuration.summary)
    }
}

struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a crocante_session cookie value sealed as the login service seals it, with SESSION_SECRET.",
        discussion: "For operations and tests: `curl -b crocante_session=$(crocante-logout seal --token T) ...`."
    )

    @Option(help: "The backend access token to seal.")
    var token: String

    @Option(help: "issuedAt in milliseconds since the epoch (default: now).")
    var issuedAt: Int64?

    @Flag(help: "Seal the raw token as older cookies did, instead of the JSON payload.")
    var legacy = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let cookie = try orExit { () throws(CrocanteError) -> String in
            guard let secretText = environment["SESSION_SECRET"], !secretText.isEmpty else {
                throw .missingSetting("SESSION_SECRET")
            }
            let secret = try SessionSecret(secretText, setting: "SESSION_SECRET")
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let plaintext =
                legacy ? Data(token.utf8) : try SealedSession.plaintext(token: token, issuedAtMilliseconds: issuedAt ?? now)
            return try SealedSession.seal(plaintext: plaintext, with: secret)
        }
        print(cookie)
    }
}
