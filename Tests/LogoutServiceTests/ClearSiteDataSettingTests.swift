import Testing

import FastCGI
import LogoutCore
@testable import LogoutService

/// `CROCANTE_CLEAR_SITE_DATA` is off by default, read quoted, and refused at start-up when unknown.
@Suite struct ClearSiteDataSettingTests {
    static let minimal = ConfigurationTests.minimal

    @Test func offByDefault() throws {
        let configuration = try Configuration(environment: Self.minimal, processorCount: 2)
        #expect(configuration.clearSiteData == nil)
        #expect(configuration.summary.contains("CROCANTE_CLEAR_SITE_DATA=(none)"))
    }

    @Test func readQuotedAndCarriedByTheLogoutAnswer() throws {
        var environment = Self.minimal
        environment["CROCANTE_CLEAR_SITE_DATA"] = "cookies,storage"
        let configuration = try Configuration(environment: environment, processorCount: 2)
        #expect(configuration.clearSiteData == #""cookies", "storage""#)
        let request = FastCGIRequest(method: "POST", path: "/api/auth/logout")
        guard case .logout(let decision) = Router(configuration: configuration).route(request) else {
            Issue.record("not routed to the logout")
            return
        }
        #expect(String(decoding: decision.response.bytes, as: UTF8.self).contains("\r\nClear-Site-Data: \"cookies\", \"storage\"\r\n"))
    }

    // An empty value is unset, as for every setting.
    @Test(arguments: ["cookie", "all", "cookies;storage", " "])
    func refused(value: String) {
        var environment = Self.minimal
        environment["CROCANTE_CLEAR_SITE_DATA"] = value
        #expect {
            _ = try Configuration(environment: environment, processorCount: 2)
        } throws: { error in
            "\(error)".hasPrefix("CROCANTE_CLEAR_SITE_DATA is invalid")
        }
    }
}
