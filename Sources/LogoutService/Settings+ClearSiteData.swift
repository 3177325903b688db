import LogoutCore

/// The setting that lets the logout answer ask the browser to clear more than the session
/// cookie (issue 12).
extension Settings {
    static let clearSiteData = Setting<String?>(
        declaration: SettingDeclaration(
            name: "CROCANTE_CLEAR_SITE_DATA", flag: "clear-site-data", acceptsNextPublicSpelling: false, credential: nil,
            accepted: "comma-separated `cache`, `cookies`, `storage`, `executionContexts`, `*`", defaultText: "unset",
            help: "Adds `Clear-Site-Data` with these directives (quoted) to the logout answer; `cookies` clears every cookie of the site, not only the session, and `storage` all of its local storage.",
            example: nil),
        defaultValue: { _ in .some(nil) },
        parse: { text in
            LogoutResponse.clearSiteData(parsing: text).map { .success($0) }
                ?? .failure(.init(reason: "is not a comma-separated list of cache, cookies, storage, executionContexts, *"))
        },
        render: { $0 ?? "(none)" })
}
