import ArgumentParser
import FoundationEssentials
import LogoutCore
import LogoutService

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
