import AsyncHTTPClient
import LogoutCore
import NIOCore
import NIOSSL
import Testing

@testable import Revocation

/// The egress proxy setting and the TLS failure reasons, as values.
@Suite struct BackendTLSTests {
    static let proxies: [(String, BackendProxy?)] = [
        ("http://127.0.0.1:3128", try? BackendProxy(parsing: "http://127.0.0.1:3128", setting: "P")),
        ("http://proxy.internal:8080/", try? BackendProxy(parsing: "http://proxy.internal:8080/", setting: "P")),
        ("http://[::1]:3128", try? BackendProxy(parsing: "http://[::1]:3128", setting: "P")),
        ("https://127.0.0.1:3128", nil),
        ("http://127.0.0.1", nil),
        ("http://user:pw@127.0.0.1:3128", nil),
        ("http://127.0.0.1:3128/path", nil),
        ("127.0.0.1:3128", nil),
        ("http://127.0.0.1:0", nil),
        ("http://127.0.0.1:65536", nil),
    ]

    @Test(arguments: proxies)
    func aProxyIsHTTPHostAndPort(text: String, expected: BackendProxy?) {
        let parsed = try? BackendProxy(parsing: text, setting: "P")
        #expect(parsed == expected)
        if expected == nil {
            #expect(throws: CrocanteError.self) { try BackendProxy(parsing: text, setting: "P") }
        }
    }

    @Test func aProxyShowsAsAURL() throws {
        #expect(try BackendProxy(parsing: "http://127.0.0.1:3128/", setting: "P").description == "http://127.0.0.1:3128")
        #expect(try BackendProxy(parsing: "http://[::1]:3128", setting: "P").description == "http://[::1]:3128")
        #expect(try BackendProxy(parsing: "http://[::1]:3128", setting: "P").host == "::1")
    }

    static let failures: [(String, any Error, RevocationOutcome.Failure)] = [
        ("hostname", NIOSSLExtraError.failedToValidateHostname, .tls(.hostnameMismatch)),
        ("handshake timeout", HTTPClientError.tlsHandshakeTimeout, .tls(.handshakeTimeout)),
        ("empty stack", NIOSSLError.handshakeFailed(.sslError([])), .tls(.handshakeRefused)),
        ("alert after the handshake", BoringSSLError.sslError([]), .tls(.handshakeRefused)),
        ("connect timeout", HTTPClientError.connectTimeout, .timeout),
        ("channel connect timeout", ChannelError.connectTimeout(.seconds(1)), .timeout),
    ]

    @Test(arguments: failures)
    func aTLSErrorBecomesAShortReason(name: String, error: any Error, expected: RevocationOutcome.Failure) {
        #expect(HTTPBackendNotifier.classify(error) == expected, "\(name)")
    }

    @Test func reasonsReadAsLogged() {
        #expect(RevocationOutcome.Failure.tls(.unknownCA).description == "tls: unknown CA")
        #expect(RevocationOutcome.Failure.tls(.expired).description == "tls: certificate expired")
        #expect(TLSFailure.allCases.filter(\.needsDiagnosis) == [.untrusted])
    }
}
