import ArgumentParser
import LogoutService

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the settings, print them (secrets redacted) and exit: 0 if usable, 78 if not.",
        discussion: "Takes the same flags as serve (crocante-logout serve --help)."
    )

    @OptionGroup var settings: SettingFlags

    func run() throws {
        print(try settings.configuration().summary)
    }
}
