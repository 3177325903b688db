import Foundation
import Testing

/// A test stack with a browser beside it; both stopped at the end (the browser by its pid).
func withBrowser(
    _ options: TestStack.Options, sourceLocation: SourceLocation = #_sourceLocation, _ body: (TestStack, BrowserPage) throws -> Void
) throws {
    try withTestStack(options, sourceLocation: sourceLocation) { stack in
        let browser = try Chromium(directory: stack.directory)
        defer { browser.stop() }
        try body(stack, try BrowserPage(browser))
    }
}

/// What the tests do on a page, in the app's words.
extension BrowserPage {
    /// Opens the demo page on `host` (`localhost` is the app's site, `127.0.0.1` another one).
    func open(_ stack: TestStack, host: String) throws {
        try navigate("http://\(host):\(stack.nginxPort)/web/demo.html")
    }

    /// Sets a cookie for the app's site as the login service does: `Path=/`, `SameSite=Strict`,
    /// `Secure` (production), `HttpOnly` unless told otherwise.
    func setCookie(_ stack: TestStack, name: String, value: String, httpOnly: Bool = true) throws {
        let reply = try send(
            "Network.setCookie",
            [
                "name": name, "value": value, "url": "http://localhost:\(stack.nginxPort)/", "path": "/",
                "httpOnly": httpOnly, "secure": true, "sameSite": "Strict",
            ])
        if let success = reply["success"] as? Bool, !success { throw HarnessError("the browser refused the cookie \(name)") }
    }

    struct CookieAttributes: Equatable {
        let httpOnly: Bool?
        let secure: Bool?
        let sameSite: String?
        let path: String?
    }

    /// How the browser holds `crocante_session`, or nil when it holds none.
    func sessionCookieAttributes() throws -> CookieAttributes? {
        try cookies().first { $0["name"] as? String == "crocante_session" }.map {
            CookieAttributes(
                httpOnly: $0["httpOnly"] as? Bool, secure: $0["secure"] as? Bool, sameSite: $0["sameSite"] as? String,
                path: $0["path"] as? String)
        }
    }

    /// The names of every cookie in the browser's jar, sorted.
    func cookieNames() throws -> [String] {
        try cookies().compactMap { $0["name"] as? String }.sorted()
    }

    /// The origin app's storage while logged in, and a listener recording `session-mode-changed`.
    func seedLocalState() throws {
        var script = "localStorage.clear();"
        for (key, value) in BrowserLogoutTests.seededStorage {
            script += "localStorage.setItem(\(Self.literal(key)), \(Self.literal(value)));"
        }
        script += """
            window.__modeEvents = [];
            window.addEventListener("session-mode-changed", (event) => window.__modeEvents.push(event.detail ? event.detail.mode : null));
            true
            """
        try evaluate(script)
    }

    /// `LoginService.logout()` from web/login-service.js, awaited; `clicks` calls at once
    /// must all get the same result, which is returned.
    func logout(timeoutMs: Int? = nil, clicks: Int = 1) throws -> (outcome: String?, status: Int?) {
        let options = timeoutMs.map { "{ timeoutMs: \($0) }" } ?? "{}"
        let value = try evaluate(
            """
            import('/web/login-service.js').then(async (module) => {
              const results = await Promise.all(Array.from({ length: \(clicks) }, () => module.LoginService.logout(\(options))));
              if (results.some((result) => result !== results[0])) throw new Error("calls in flight got different results");
              return results[0];
            })
            """, timeout: .seconds(40))
        let result = value as? [String: Any] ?? [:]
        return (result["outcome"] as? String, result["status"] as? Int)
    }

    /// Every localStorage entry of the page's origin.
    func localStorage() throws -> [String: String] {
        try evaluate("Object.fromEntries(Object.keys(localStorage).map((key) => [key, localStorage.getItem(key)]))")
            as? [String: String] ?? [:]
    }

    /// The `detail.mode` of every `session-mode-changed` event since ``seedLocalState()``.
    func modeEvents() throws -> [String] {
        try evaluate("window.__modeEvents") as? [String] ?? []
    }
}
