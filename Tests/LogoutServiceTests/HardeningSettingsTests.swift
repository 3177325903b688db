import Testing

import FastCGI
import LogoutCore
@testable import LogoutService

@Suite struct HardeningSettingsTests {
    static let minimal = ConfigurationTests.minimal

    @Test func defaults() throws {
        let configuration = try Configuration(environment: Self.minimal, processorCount: 2)
        #expect(configuration.requestTimeout == .milliseconds(2000))
        #expect(configuration.allowlist == .everyone)
        #expect(configuration.secretMismatchShare == 0.5)
        #expect(configuration.clearCookieVariants.isEmpty)
        #expect(configuration.warnings.isEmpty)
    }

    @Test func allowlistsAndVariantsAreRead() throws {
        var environment = Self.minimal
        environment["CROCANTE_ALLOWED_CLIENTS"] = "127.0.0.1, 10.0.0.0/8"
        environment["CROCANTE_ALLOWED_PEERS"] = "uid:33,gid:33"
        environment["CROCANTE_CLEAR_COOKIE_VARIANTS"] = "Domain=.example.com"
        environment["CROCANTE_REQUEST_TIMEOUT_MS"] = "500"
        let configuration = try Configuration(environment: environment, processorCount: 2)
        #expect(configuration.allowlist.clients.map(\.description) == ["127.0.0.1/32", "10.0.0.0/8"])
        #expect(configuration.allowlist.users == [33] && configuration.allowlist.groups == [33])
        #expect(configuration.clearCookieVariants == ["Domain=.example.com"])
        #expect(configuration.requestTimeout == .milliseconds(500))
        #expect(configuration.summary.contains("CROCANTE_ALLOWED_CLIENTS=127.0.0.1/32,10.0.0.0/8"))
    }

    /// What crashed or misled before (issue 10) is refused, naming the setting, and never
    /// echoing a password.
    @Test(arguments: [
        ("API_GATEWAY", "http://127.0.0.1:65536"),
        ("API_GATEWAY", "http://user:hunter2@127.0.0.1:8080"),
        ("API_GATEWAY", "https://api.example.com/#x"),
        ("EP_AUTH_LOGOUT", "../../admin/purge"),
        ("EP_AUTH_LOGOUT", "%2e%2e/x"),
        ("EP_AUTH_LOGOUT", "http://evil.example/x"),
        ("CROCANTE_ALLOWED_CLIENTS", "localhost"),
        ("CROCANTE_ALLOWED_PEERS", "uid:www-data"),
        ("CROCANTE_REQUEST_TIMEOUT_MS", "99"),
        ("CROCANTE_SECRET_MISMATCH_PERCENT", "101"),
        ("CROCANTE_CLEAR_COOKIE_VARIANTS", "Path=/"),
    ])
    func refuses(name: String, value: String) {
        var environment = Self.minimal
        environment[name] = value
        #expect {
            _ = try Configuration(environment: environment, processorCount: 2)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("\(name) is invalid") && !text.contains("hunter2")
        }
    }

    @Test(arguments: ["  \(ConfigurationTests.secret)", "\(ConfigurationTests.secret) ", "\(ConfigurationTests.secret)\r"])
    func aSecretWithSurroundingWhiteSpaceWarns(secret: String) throws {
        var environment = Self.minimal
        environment["SESSION_SECRET"] = secret
        let configuration = try Configuration(environment: environment, processorCount: 2)
        #expect(configuration.warnings.count == 1)
        #expect(configuration.warnings.first?.contains("SESSION_SECRET") == true)
        #expect(configuration.warnings.first?.contains(ConfigurationTests.secret) == false)
    }

    @Test(arguments: ["\n", "\r\n"])
    func aSecretFileLosesOneFinalLineEnd(ending: String) throws {
        var environment = Self.minimal
        environment["SESSION_SECRET"] = nil
        environment["SESSION_SECRET_FILE"] = "/secret"
        let fromFile = try Configuration(environment: environment, processorCount: 2, readFile: { _ in ConfigurationTests.secret + ending })
        #expect(fromFile.warnings.isEmpty)
        let plain = try Configuration(environment: Self.minimal, processorCount: 2)
        // Same key: a cookie sealed with one opens with the other.
        let cookie = try SealedSession.seal(plaintext: SealedSession.plaintext(token: "t", issuedAtMilliseconds: 1), with: plain.sessionSecret)
        #expect(SealedSession.Opener(secrets: fromFile.sessionSecrets).token(fromCookieValue: Array(cookie.utf8))?.value == "t")
    }
}
