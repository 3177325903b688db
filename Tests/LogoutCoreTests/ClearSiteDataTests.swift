import Testing

import LogoutCore

/// `CROCANTE_CLEAR_SITE_DATA`: what it accepts, and the header it adds to the precomputed answer.
@Suite struct ClearSiteDataTests {
    @Test(arguments: [
        ("cookies", #""cookies""#),
        (#""cookies""#, #""cookies""#),
        ("cookies, storage", #""cookies", "storage""#),
        (#" "storage" ,cache"#, #""storage", "cache""#),
        ("executionContexts", #""executionContexts""#),
        ("*", #""*""#),
    ])
    func accepted(text: String, header: String) {
        #expect(LogoutResponse.clearSiteData(parsing: text) == header)
    }

    @Test(arguments: [
        "", " ", "cookie", "Cookies", "cookies,", ",cookies", "cookies, cookies", #""cookies"#, "cookies storage",
        #"'cookies'"#, "clientHints",
    ])
    func refused(text: String) {
        #expect(LogoutResponse.clearSiteData(parsing: text) == nil)
    }

    @Test func theHeaderFollowsTheClearedCookiesAndNoneChangesNothing() throws {
        for secure in [false, true] {
            #expect(LogoutResponse.loggedOut(secure: secure, variants: [], clearSiteData: nil) == .loggedOut(secure: secure))
        }
        let text = String(
            decoding: LogoutResponse.loggedOut(secure: true, variants: ["Domain=.example.com"], clearSiteData: #""cookies", "storage""#).bytes,
            as: UTF8.self)
        let cookie = "Set-Cookie: crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict; Secure"
        #expect(text.hasSuffix(cookie + "\r\n" + cookie + "; Domain=.example.com\r\nClear-Site-Data: \"cookies\", \"storage\"\r\n\r\n{\"success\":true}"))
    }
}
