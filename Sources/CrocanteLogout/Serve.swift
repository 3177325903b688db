import ArgumentParser
import FastCGI
import FoundationEssentials
import LogoutCore
import LogoutService

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve logouts until SIGTERM or SIGINT (the default subcommand).",
        discussion: """
            On SIGTERM or SIGINT: stop accepting, finish the requests being served, give pending \
            revocations up to the drain deadline (a spool keeps the rest for the next process), \
            print the final status JSON on stdout, exit 0.

            Flags (each overrides its environment variable; secrets have none):

            \(Settings.flagHelp)
            """
    )

    @OptionGroup var settings: SettingFlags

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
