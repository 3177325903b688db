import Logging
import LogoutCore
import Revocation
import RevocationSpool

#if canImport(Glibc)
import Glibc
#endif

/// The spool tests' child process, so that a crash or a mount namespace is real:
///
/// - `crash DIR COUNT`: appends COUNT records (`probe-token-<i>`), then SIGKILLs itself before any
///   orderly hand-over (the sync interval is an hour: nothing after the first sync is fdatasync'd).
/// - `fill DIR`: appends until `append` returns nil (or 100,000 records) and prints the counters
///   as `appended=N writeErrors=N full=N`.
/// Either mode prints `refused: <error>` and exits 78 when the spool refuses to open.
/// The secret is a fixed test secret: this probe only ever sees test tokens.
@main
enum SpoolCrashProbe {
    static let secret = "spool-probe-secret-0123456789-abcdefgh"

    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3 else {
            print("usage: SpoolCrashProbe crash DIR COUNT | fill DIR")
            exit(64)
        }
        let spool: Spool
        do {
            let settings = SpoolSettings(directory: arguments[2], syncInterval: .seconds(3600))
            spool = try Spool(settings: settings, secrets: [SessionSecret(secret, setting: "probe")], logger: Logger(label: "probe"))
        } catch {
            print("refused: \(error)")
            exit(78)
        }
        switch arguments[1] {
        case "crash":
            let count = Int(arguments.count > 3 ? arguments[3] : "") ?? 100
            for index in 0..<count {
                let token = AccessToken(validating: Array("probe-token-\(index)".utf8))!
                guard spool.append(token: token, loggedOutAt: 1_700_000_000_000 + Int64(index)) != nil else {
                    print("append \(index) failed")
                    exit(1)
                }
            }
            print("appended=\(count)")
            fflush(nil)  // every stream: the pipe must get the line before the kill
            kill(getpid(), SIGKILL)
        default:
            var appended = 0
            while appended < 100_000 {
                let token = AccessToken(validating: Array("probe-token-\(appended)".utf8))!
                guard spool.append(token: token, loggedOutAt: 1_700_000_000_000) != nil else { break }
                appended += 1
            }
            let statistics = spool.statistics
            print("appended=\(appended) writeErrors=\(statistics.writeErrors) full=\(statistics.full)")
        }
    }
}
