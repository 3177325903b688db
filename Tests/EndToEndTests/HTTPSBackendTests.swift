import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The https backend (issue 11): the stand-in serves TLS with certificates made at test time
/// (``TestCertificates``), through real nginx; what the backend received and the reason logged.
@Suite(.serialized)
struct HTTPSBackendTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        /// Stand-in TLS flags, from the test PKI.
        let backend: @Sendable (TestCertificates) -> [String]
        /// Responder settings over the stack's; `{backend}` is the stand-in's address.
        let environment: @Sendable (TestCertificates) -> [String: String]
        /// Key as the systemd credential `backend_client_key` (a `CREDENTIALS_DIRECTORY` made for the test).
        var keyAsCredential = false
        /// Through a CONNECT proxy stand-in.
        var viaProxy = false
        /// nil: revoked with the bearer received; else the reason logged, and the backend received nothing.
        let reason: String?
        var testDescription: String { name }
    }

    /// Serves the named pair of the test PKI (`server`, `wronghost`, `expired`).
    static func serving(_ name: String) -> @Sendable (TestCertificates) -> [String] {
        { pki in ["--tls-cert", pki.pair(name).certificate, "--tls-key", pki.pair(name).key] }
    }

    static let requiringClient: @Sendable (TestCertificates) -> [String] = { pki in
        serving("server")(pki) + ["--require-client-cert", "--client-ca", pki.ca]
    }

    static let https = "https://{backend}/"

    static let cases: [Case] = [
        Case(name: "trusted private CA: revoked", backend: serving("server"),
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] }, reason: nil),
        Case(name: "system store only: unknown CA", backend: serving("server"),
             environment: { _ in ["API_GATEWAY": https] }, reason: "reason=tls: unknown CA"),
        Case(name: "pinned to another CA: unknown CA", backend: serving("server"),
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.otherCA] }, reason: "reason=tls: unknown CA"),
        Case(name: "wrong host", backend: serving("wronghost"),
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] }, reason: "reason=tls: hostname mismatch"),
        Case(name: "expired", backend: serving("expired"),
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] }, reason: "reason=tls: certificate expired"),
        Case(name: "mTLS required and given (key as credential): revoked", backend: requiringClient,
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca,
                             "CROCANTE_BACKEND_CLIENT_CERT_FILE": $0.client.certificate, "CROCANTE_LOG_LEVEL": "trace"] },
             keyAsCredential: true, reason: nil),
        Case(name: "mTLS required and missing", backend: requiringClient,
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] },
             reason: "reason=tls: client certificate required"),
        Case(name: "https to a plain-HTTP port", backend: { _ in [] },
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] },
             reason: "reason=tls: the backend does not speak TLS on this port"),
        Case(name: "through a CONNECT proxy: revoked", backend: serving("server"),
             environment: { ["API_GATEWAY": https, "CROCANTE_BACKEND_CA_FILE": $0.ca] }, viaProxy: true, reason: nil),
    ]

    @Test(arguments: cases)
    func anHTTPSBackend(_ test: Case) throws {
        let pki = try TestCertificates.make()
        var environment = test.environment(pki)
        let proxy = test.viaProxy ? try ConnectProxy() : nil
        defer { proxy?.stop() }
        if let proxy { environment["CROCANTE_BACKEND_PROXY"] = "http://127.0.0.1:\(proxy.port)" }
        let credentials = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        if test.keyAsCredential {
            try FileManager.default.copyItem(atPath: pki.client.key, toPath: credentials.appendingPathComponent("backend_client_key").path)
            environment["CREDENTIALS_DIRECTORY"] = credentials.path
        }
        try withTestStack(.init(backend: test.backend(pki), environment: environment)) { stack in
            let token = Seal.tokens(1, "https")[0]
            #expect(try stack.logout(Seal.session(token)).status == 200)
            if let reason = test.reason {
                #expect(Harness.waitUntil { stack.responder.stderr.contains(reason) }, "\(stack.responder.stderr)")
                #expect(stack.backendRequests().isEmpty, "the bearer reached a backend it must not trust")
                let stopped = stack.stopResponder()
                #expect(stopped.status == 0)
                let status = try #require(stack.responder.finalStatus)
                #expect(status["revocations_revoked"] == 0 && (status["revocations_failed"] ?? 0) >= 1, "\(status)")
            } else {
                #expect(stack.backendReaches(1))
                #expect(stack.backendBearers == ["Bearer \(token)"])
                let stopped = stack.stopResponder()
                #expect(stopped.totals == ResponderTotals(requests: 1, queued: 1, revoked: 1))
                if let proxy { #expect(proxy.targets == ["127.0.0.1:\(stack.backendPort)"]) }
            }
        }
    }

    /// Connections are pooled: ten revocations over TLS, one handshake's worth of connections.
    @Test func revocationsReuseTheTLSConnection() throws {
        let pki = try TestCertificates.make()
        let options = TestStack.Options(
            backend: Self.serving("server")(pki),
            environment: ["API_GATEWAY": Self.https, "CROCANTE_BACKEND_CA_FILE": pki.ca].merging(TestStack.oneAtATime) { $1 })
        try withTestStack(options) { stack in
            let tokens = Seal.tokens(10, "pooled")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.waitForDelivery(of: tokens).isEmpty)
            #expect(Proc.establishedConnections(toPort: stack.backendPort) == 1)
        }
    }
}

/// Every TLS setting that cannot work is refused at start-up: one line naming it, exit 78,
/// nothing listening, no key byte echoed; and check-config shows what it would use.
@Suite struct HTTPSStartupTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let settings: @Sendable (TestCertificates) throws -> [String: String]
        let message: String
        var testDescription: String { name }
    }

    static func file(_ name: String, _ text: String) throws -> String {
        let pki = try TestCertificates.make()
        let path = pki.path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static let https = ["API_GATEWAY": "https://127.0.0.1:9/"]

    static let refusals: [Refusal] = [
        Refusal(name: "unreadable CA file", settings: { _ in https.merging(["CROCANTE_BACKEND_CA_FILE": "/nonexistent/ca.pem"]) { $1 } },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: cannot read \"/nonexistent/ca.pem\""),
        Refusal(name: "CA file with no certificate", settings: { pki in https.merging(["CROCANTE_BACKEND_CA_FILE": try file("empty.pem", "not a certificate\n")]) { $1 } },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: "),
        Refusal(name: "CA file with a broken certificate", settings: { _ in
                    https.merging(["CROCANTE_BACKEND_CA_FILE": try file("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA!!\n-----END CERTIFICATE-----\n")]) { $1 } },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: "),
        Refusal(name: "key only, as a CA file", settings: { pki in https.merging(["CROCANTE_BACKEND_CA_FILE": pki.path("other-ca.key")]) { $1 } },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: "),
        Refusal(name: "relative CA path", settings: { _ in https.merging(["CROCANTE_BACKEND_CA_FILE": "ca.pem"]) { $1 } },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: \"ca.pem\" is not an absolute path"),
        Refusal(name: "client certificate without its key", settings: { pki in https.merging(["CROCANTE_BACKEND_CLIENT_CERT_FILE": pki.client.certificate]) { $1 } },
                message: "CROCANTE_BACKEND_CLIENT_CERT_FILE is invalid: a client certificate needs its key"),
        Refusal(name: "key without its certificate", settings: { pki in https.merging(["CROCANTE_BACKEND_CLIENT_KEY_FILE": pki.client.key]) { $1 } },
                message: "CROCANTE_BACKEND_CLIENT_KEY_FILE is invalid: a client key needs its certificate"),
        Refusal(name: "key of another certificate", settings: { pki in
                    https.merging(["CROCANTE_BACKEND_CLIENT_CERT_FILE": pki.client.certificate, "CROCANTE_BACKEND_CLIENT_KEY_FILE": pki.server.key]) { $1 } },
                message: "CROCANTE_BACKEND_CLIENT_KEY_FILE is invalid: the key does not match the client certificate"),
        Refusal(name: "key that is no key", settings: { pki in
                    https.merging(["CROCANTE_BACKEND_CLIENT_CERT_FILE": pki.client.certificate, "CROCANTE_BACKEND_CLIENT_KEY_FILE": pki.client.certificate]) { $1 } },
                message: "CROCANTE_BACKEND_CLIENT_KEY_FILE is invalid: "),
        Refusal(name: "unreadable key file", settings: { pki in
                    https.merging(["CROCANTE_BACKEND_CLIENT_CERT_FILE": pki.client.certificate, "CROCANTE_BACKEND_CLIENT_KEY_FILE": "/nonexistent/key.pem"]) { $1 } },
                message: "CROCANTE_BACKEND_CLIENT_KEY_FILE is invalid: cannot read"),
        Refusal(name: "CA file with an http URL", settings: { pki in ["CROCANTE_BACKEND_CA_FILE": pki.ca] },
                message: "CROCANTE_BACKEND_CA_FILE is invalid: applies only to an https:// API_GATEWAY"),
        Refusal(name: "client certificate with an http URL", settings: { pki in
                    ["CROCANTE_BACKEND_CLIENT_CERT_FILE": pki.client.certificate, "CROCANTE_BACKEND_CLIENT_KEY_FILE": pki.client.key] },
                message: "CROCANTE_BACKEND_CLIENT_CERT_FILE is invalid: applies only to an https:// API_GATEWAY"),
        Refusal(name: "https proxy", settings: { _ in ["CROCANTE_BACKEND_PROXY": "https://127.0.0.1:3128"] },
                message: "CROCANTE_BACKEND_PROXY is invalid: \"https://127.0.0.1:3128\" must be an http:// proxy"),
        Refusal(name: "proxy without a port", settings: { _ in ["CROCANTE_BACKEND_PROXY": "http://127.0.0.1"] },
                message: "CROCANTE_BACKEND_PROXY is invalid: \"http://127.0.0.1\" names no port"),
        Refusal(name: "proxy with a password", settings: { _ in ["CROCANTE_BACKEND_PROXY": "http://user:pw@127.0.0.1:3128"] },
                message: "CROCANTE_BACKEND_PROXY is invalid: "),
    ]

    @Test(arguments: refusals)
    func aTLSSettingThatCannotWorkIsOneLineAndExit78(_ refusal: Refusal) throws {
        let pki = try TestCertificates.make()
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socketPath = directory.appendingPathComponent("fcgi.sock").path
        var environment = StartupRefusalTests.valid
        environment["CROCANTE_LISTEN"] = "unix:\(socketPath)"
        environment.merge(try refusal.settings(pki)) { $1 }
        for command in [[], ["check-config"]] {
            let result = try Harness.run(Harness.product("crocante-logout").path, command, environment: environment)
            #expect(result.status == 78, "\(command): \(result.stderr)")
            #expect(result.stderr.hasPrefix("crocante-logout: \(refusal.message)"), "\(result.stderr)")
            #expect(result.stderr.hasSuffix("\n") && result.stderr.split(separator: "\n").count == 1)
            #expect(SecretLedger.leaks(in: result.stderr + result.stdout).isEmpty, "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: socketPath), "a socket was created before the refusal")
    }

    /// check-config names the files, the CA's and the client certificate's subjects and the
    /// expiry, warns about a certificate that expires within 30 days (the test ones live 3), and
    /// shows no key material.
    @Test func checkConfigShowsTheTLSSettings() throws {
        let pki = try TestCertificates.make()
        var environment = StartupRefusalTests.valid
        environment.merge(Self.https) { $1 }
        environment["CROCANTE_BACKEND_CA_FILE"] = pki.ca
        environment["CROCANTE_BACKEND_CLIENT_CERT_FILE"] = pki.client.certificate
        environment["CROCANTE_BACKEND_CLIENT_KEY_FILE"] = pki.client.key
        environment["CROCANTE_BACKEND_PROXY"] = "http://127.0.0.1:3128/"
        let result = try Harness.run(Harness.product("crocante-logout").path, ["check-config"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("CROCANTE_BACKEND_CA_FILE=\(pki.ca)"))
        #expect(lines.contains("CROCANTE_BACKEND_CLIENT_KEY=(set from \"\(pki.client.key)\", redacted)"), "\(lines)")
        #expect(lines.contains("CROCANTE_BACKEND_PROXY=http://127.0.0.1:3128"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("backend trust=only \"\(pki.ca)\": CN=crocante test CA") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("backend client certificate=\"\(pki.client.certificate)\": subject CN=crocante-logout test client, expires 20") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("warning: the client certificate in \"\(pki.client.certificate)\" expires on") }, "\(lines)")
        #expect(SecretLedger.leaks(in: result.stdout + result.stderr).isEmpty)
    }
}
