import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Logout in a real browser (issue 12): headless chromium loads `web/` from the stack's nginx
/// (nginx.conf.example plus web/nginx-demo.conf), holds the sealed session cookie as the login
/// service sets it, and calls `LoginService.logout()` from web/login-service.js.
///
/// The app's site is `http://localhost:PORT`; `http://127.0.0.1:PORT` is another site (ports do
/// not make sites), which is the cross-site attacker. Both are potentially trustworthy, so the
/// `Secure` cookie of production works on plain HTTP.
@Suite(.serialized, .enabled(if: Chromium.isInstalled, Chromium.missingReason))
struct BrowserLogoutTests {
    /// The origin app's local storage before logout: its two keys, JSON-encoded.
    static let seededStorage = ["crocante_token": #""app-token""#, "crocante_session_mode": #""real""#]
    static let afterLogoutStorage = ["crocante_session_mode": #""none""#]

    @Test func logoutDropsTheCookieRevokesOnceAndClearsLocalState() throws {
        let token = Seal.tokens(1, "browser")[0]
        let cookie = try Seal.session(token)
        try withBrowser(.init(environment: TestStack.oneAtATime, site: try Self.demoSite())) { stack, page in
            try page.open(stack, host: "localhost")
            try page.setCookie(stack, name: "crocante_session", value: cookie)
            try page.setCookie(stack, name: "app_pref", value: "dark", httpOnly: false)
            #expect(try page.cookieNames() == ["app_pref", "crocante_session"])
            #expect(try page.sessionCookieAttributes() == .init(httpOnly: true, secure: true, sameSite: "Strict", path: "/"))
            try page.seedLocalState()

            let result = try page.logout()
            #expect(result.outcome == "ok" && result.status == 200)
            // The answer's Set-Cookie removed the HttpOnly cookie from the jar; nothing else.
            #expect(try page.cookieNames() == ["app_pref"])
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
            #expect(try page.localStorage() == Self.afterLogoutStorage)
            #expect(try page.modeEvents() == ["none"])
        }
    }

    @Test func responderStoppedStillClearsLocalState() throws {
        let cookie = try Seal.session(Seal.tokens(1, "browser-502")[0])
        // No responder: nginx finds no socket and answers 502.
        try withBrowser(.init(site: try Self.demoSite(), startsResponder: false)) { stack, page in
            try page.open(stack, host: "localhost")
            try page.setCookie(stack, name: "crocante_session", value: cookie)
            try page.seedLocalState()

            let result = try page.logout()
            #expect(result.outcome == "http-error" && result.status == 502)
            #expect(try page.localStorage() == Self.afterLogoutStorage)
            #expect(try page.modeEvents() == ["none"])
            // What the browser shows: no answer from the responder, no Set-Cookie, so the HttpOnly
            // cookie stays (no script can remove it) until a later logout or its expiry.
            #expect(try page.cookieNames() == ["crocante_session"])
            #expect(stack.backendRequests().isEmpty)
        }
    }

    @Test func hangingNetworkResolvesWithinTheTimeout() throws {
        let cookie = try Seal.session(Seal.tokens(1, "browser-hang")[0])
        // The test holds the responder's socket and nobody accepts on it: nginx connects, sends the
        // request and waits (fastcgi_read_timeout 15 s), as on a hung network.
        try withBrowser(.init(listen: .systemdSocket, site: try Self.demoSite(), startsResponder: false)) { stack, page in
            try page.open(stack, host: "localhost")
            try page.setCookie(stack, name: "crocante_session", value: cookie)
            try page.seedLocalState()

            // Resolving as "timeout" (not nginx's 504 after 15 s) is the client's AbortController at work.
            // A double click while the request hangs joins the first call: one event below.
            let result = try page.logout(timeoutMs: 1000, clicks: 2)
            #expect(result.outcome == "timeout" && result.status == nil)
            #expect(try page.localStorage() == Self.afterLogoutStorage)
            #expect(try page.modeEvents() == ["none"])
            #expect(try page.cookieNames() == ["crocante_session"])
        }
    }

    @Test func aCrossSiteFormPostCarriesNoSessionCookie() throws {
        let cookie = try Seal.session(Seal.tokens(1, "browser-csrf")[0])
        try withBrowser(.init(environment: TestStack.oneAtATime, site: try Self.demoSite())) { stack, page in
            try page.open(stack, host: "localhost")
            try page.setCookie(stack, name: "crocante_session", value: cookie)
            #expect(try page.cookieNames() == ["crocante_session"])

            // The attacker's page, on the other site, submits a form to the logout URL.
            try page.open(stack, host: "127.0.0.1")
            let target = "http://localhost:\(stack.nginxPort)/api/auth/logout"
            try page.evaluate(
                """
                (() => { const form = document.createElement("form"); form.method = "POST";
                  form.action = \(BrowserPage.literal(target)); document.body.append(form); form.submit(); return true; })()
                """)
            try page.waitUntil("location.href === \(BrowserPage.literal(target)) && document.readyState === 'complete'")
            // The POST reached the responder and was answered...
            #expect(try page.evaluate("document.body.innerText.trim()") as? String == #"{"success":true}"#)
            // ...without the SameSite=Strict cookie: no revocation (the marker logout is the first call).
            try stack.expectNoOtherCall(after: 0)
            #expect(try stack.status()["logouts"] == 2)
            // What the jar holds afterwards (README, "What a real browser showed").
            #expect(try page.cookieNames() == [])
        }
    }

    @Test func clearSiteDataCookiesClearsEveryCookieOfTheSite() throws {
        let token = Seal.tokens(1, "browser-csd")[0]
        let cookie = try Seal.session(token)
        let options = TestStack.Options(environment: ["CROCANTE_CLEAR_SITE_DATA": "cookies"], site: try Self.demoSite())
        try withBrowser(options) { stack, page in
            try page.open(stack, host: "localhost")
            try page.setCookie(stack, name: "crocante_session", value: cookie)
            try page.setCookie(stack, name: "app_pref", value: "dark", httpOnly: false)
            try page.seedLocalState()

            let result = try page.logout()
            #expect(result.outcome == "ok")
            // The trade-off: the app's other cookie goes too.
            #expect(try page.cookieNames() == [])
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
            #expect(try page.localStorage() == Self.afterLogoutStorage)
            #expect(try page.modeEvents() == ["none"])
        }
    }

    /// The demo as a newcomer uses it: "Log in (demo)", then "Log out"; a screenshot of each,
    /// written to a kept directory (printed), or to `CROCANTE_SCREENSHOT_DIR` (e.g. `docs`).
    @Test func demoPageScreenshotsBeforeAndAfterLogout() throws {
        let token = Seal.tokens(1, "browser-demo")[0]
        let cookie = try Seal.session(token)
        let artefacts: URL
        if let directory = ProcessInfo.processInfo.environment["CROCANTE_SCREENSHOT_DIR"] {
            artefacts = URL(fileURLWithPath: directory, relativeTo: Harness.packageRoot)
        } else {
            // Kept after the test (the stack's own directory is removed): the artefacts.
            var template = Array("/tmp/crocante-browser-screenshots-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
            artefacts = URL(fileURLWithPath: String(cString: made))
        }
        try withBrowser(.init(site: try Self.demoSite(cookie: cookie))) { stack, page in
            try page.open(stack, host: "localhost")
            try page.evaluate("document.getElementById('login').click(), true")
            try page.waitUntil("document.getElementById('cookie').textContent === 'present' && document.getElementById('mode').textContent === 'real'")
            // nginx (web/nginx-demo.conf) set it as the login service does; development: not Secure.
            #expect(try page.sessionCookieAttributes() == .init(httpOnly: true, secure: false, sameSite: "Strict", path: "/"))
            let before = artefacts.appendingPathComponent("demo-before-logout.png")
            try page.screenshot(to: before)

            try page.evaluate("document.getElementById('logout').click(), true")
            try page.waitUntil("document.body.dataset.loggedOut === 'true'")
            #expect(try page.evaluate("document.getElementById('cookie').textContent") as? String == "absent")
            #expect(try page.evaluate("document.getElementById('mode').textContent") as? String == "none")
            let after = artefacts.appendingPathComponent("demo-after-logout.png")
            try page.screenshot(to: after)
            #expect(try page.cookieNames() == [])
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
            print("demo screenshots: \(before.path) \(after.path)")
        }
    }

    /// nginx.conf.example's server block plus web/nginx-demo.conf, as scripts/quickstart makes it.
    static func demoSite(cookie: String = "unused") throws -> [(String, String)] {
        let web = Harness.packageRoot.appendingPathComponent("web")
        let demo = try String(contentsOf: web.appendingPathComponent("nginx-demo.conf"), encoding: .utf8)
            .replacingOccurrences(of: "@WEB_ROOT@", with: web.path)
            .replacingOccurrences(of: "@DEMO_COOKIE@", with: cookie)
        return [("server_name _;", "server_name _;\n" + demo)]
    }
}
