import ArgumentParser
import LogoutService

struct PrintSettings: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the settings table: as the README's Markdown table, or as deploy/env.example."
    )

    @Flag(help: "The README's configuration table (the default).")
    var markdown = false

    @Flag(help: "deploy/env.example.")
    var envExample = false

    func run() throws {
        print(envExample ? Settings.environmentExample : Settings.markdownTable, terminator: "")
    }
}
