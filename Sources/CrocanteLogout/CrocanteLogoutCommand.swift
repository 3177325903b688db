import ArgumentParser
import LogoutService

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
            `crocante-logout serve --help` lists the flags.
            """,
        version: crocanteVersion,
        subcommands: [Serve.self, CheckConfig.self, Seal.self, PrintSettings.self],
        defaultSubcommand: Serve.self
    )
}
