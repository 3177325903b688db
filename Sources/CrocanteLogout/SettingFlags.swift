import ArgumentParser
import FoundationEssentials
import LogoutCore
import LogoutService

#if canImport(Glibc)
import Glibc
#endif

/// The flags of the settings table (``Settings/all``), shared by `serve` and `check-config`.
/// They are not declared one by one here: every `--flag value` (or `--flag=value`) that
/// argument-parser does not know is looked up in the table and written over its variable.
struct SettingFlags: ParsableArguments {
    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp("Settings as flags, e.g. --listen unix:/run/x.sock (see below).", valueName: "--flag value"))
    var arguments: [String] = []

    /// The process environment with every given flag written over its variable.
    func environment(_ base: [String: String]) throws -> [String: String] {
        var environment = base
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            guard argument.hasPrefix("--") else { throw ValidationError("unexpected argument '\(argument)'") }
            let parts = argument.dropFirst(2).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let flag = String(parts[0])
            guard let setting = Settings.all.first(where: { $0.flag == flag }) else {
                throw ValidationError("unknown option '--\(flag)'")
            }
            if parts.count == 2 {
                environment[setting.name] = String(parts[1])
            } else if let value = remaining.popFirst() {
                environment[setting.name] = value
            } else {
                throw ValidationError("missing value for '--\(flag)'")
            }
        }
        return environment
    }

    /// The validated configuration, or exit with the error's status after one line on stderr.
    func configuration() throws -> Configuration {
        let environment = try environment(ProcessInfo.processInfo.environment)
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
