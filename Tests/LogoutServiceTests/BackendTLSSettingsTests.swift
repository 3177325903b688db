import LogoutCore
import Revocation
import Testing

@testable import LogoutService

/// The TLS and proxy settings as the configuration reads them (issue 11), files injected; the
/// certificates themselves are exercised end to end (HTTPSBackendTests), where openssl makes them.
@Suite struct BackendTLSSettingsTests {
    static let base = ConfigurationTests.minimal

    static func configure(_ changes: [String: String], files: [String: String] = [:]) throws(CrocanteError) -> Configuration {
        try Configuration(
            environment: base.merging(changes) { $1 }, processorCount: 1, readFile: { files[$0] })
    }

    static let refusals: [(name: String, environment: [String: String], files: [String: String], message: String)] = [
        ("CA file with an http gateway", ["API_GATEWAY": "http://backend:8080", "CROCANTE_BACKEND_CA_FILE": "/ca.pem"], ["/ca.pem": "x"],
         "CROCANTE_BACKEND_CA_FILE is invalid: applies only to an https:// API_GATEWAY"),
        ("key credential with an http gateway", ["API_GATEWAY": "http://backend:8080", "CREDENTIALS_DIRECTORY": "/creds"],
         ["/creds/backend_client_key": "k"], "credential backend_client_key is invalid: applies only to an https:// API_GATEWAY"),
        ("unreadable CA file", ["CROCANTE_BACKEND_CA_FILE": "/missing.pem"], [:],
         "CROCANTE_BACKEND_CA_FILE is invalid: cannot read \"/missing.pem\""),
        ("CA file without a certificate", ["CROCANTE_BACKEND_CA_FILE": "/ca.pem"], ["/ca.pem": "hello\n"],
         "CROCANTE_BACKEND_CA_FILE is invalid: \"/ca.pem\""),
        ("relative CA path", ["CROCANTE_BACKEND_CA_FILE": "ca.pem"], [:], "CROCANTE_BACKEND_CA_FILE is invalid: \"ca.pem\" is not an absolute path"),
        ("key without certificate", ["CROCANTE_BACKEND_CLIENT_KEY_FILE": "/key.pem"], ["/key.pem": "k"],
         "CROCANTE_BACKEND_CLIENT_KEY_FILE is invalid: a client key needs its certificate"),
        ("proxy over https", ["CROCANTE_BACKEND_PROXY": "https://proxy:3128"], [:], "CROCANTE_BACKEND_PROXY is invalid"),
    ]

    @Test(arguments: refusals)
    func aTLSSettingThatCannotWorkIsRefused(_ refusal: (name: String, environment: [String: String], files: [String: String], message: String)) {
        do {
            _ = try Self.configure(refusal.environment, files: refusal.files)
            Issue.record("\(refusal.name) was accepted")
        } catch {
            #expect(error.description.hasPrefix(refusal.message), "\(refusal.name): \(error)")
        }
    }

    @Test func anHTTPSGatewayWithoutTLSSettingsTrustsTheSystemStore() throws {
        let configuration = try Self.configure(["CROCANTE_BACKEND_PROXY": "http://127.0.0.1:3128/"])
        let tls = try #require(configuration.backendTLS)
        #expect(tls.trustRoots == nil && tls.clientChain.isEmpty && tls.clientKey == nil)
        #expect(configuration.backendProxy == (try BackendProxy(parsing: "http://127.0.0.1:3128", setting: "P")))
        #expect(configuration.summary.contains("\nbackend trust=the system store, /etc/ssl/certs/ca-certificates.crt"))
        #expect(configuration.summary.contains("\nCROCANTE_BACKEND_CLIENT_KEY=(unset)\n"))
    }

    @Test func anHTTPGatewayHasNoTLS() throws {
        let configuration = try Self.configure(["API_GATEWAY": "http://backend:8080"])
        #expect(configuration.backendTLS == nil && configuration.backendProxy == nil)
    }
}
