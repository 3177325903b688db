import LogoutCore
import Testing

@Suite struct BackendURLTests {
    @Test(arguments: [
        ("http://127.0.0.1:8081", "127.0.0.1", 8081, ""),
        ("https://api.example.com", "api.example.com", nil, ""),
        ("HTTPS://api.example.com/", "api.example.com", nil, "/"),
        ("http://[::1]:9000/base/v1", "::1", 9000, "/base/v1"),
        ("http://backend_1.internal:65535", "backend_1.internal", 65535, ""),
        ("http://localhost:1/api", "localhost", 1, "/api"),
    ] as [(String, String, Int?, String)])
    func acceptsGateway(text: String, host: String, port: Int?, path: String) throws {
        let gateway = try BackendURL.gateway(text, setting: "API_GATEWAY")
        #expect(gateway.host == host && gateway.port == port && gateway.path == path)
    }

    /// Each value from issue 10 and its neighbours, with a word from the reason.
    @Test(arguments: [
        ("http://127.0.0.1:65536", "port"),
        ("http://127.0.0.1:0", "port"),
        ("http://127.0.0.1:", "port"),
        ("http://127.0.0.1:99999999999999999999", "port"),
        ("http://127.0.0.1:8o", "port"),
        ("http://user:pw@127.0.0.1", "user:password@"),
        ("http://token@api.example.com/", "user:password@"),
        ("http://api.example.com/#frag", "fragment"),
        ("http://api.example.com/?a=1", "query"),
        ("http://api.example.com/a/../admin", "segments"),
        ("http://api.example.com/%2E%2e/admin", "percent-encoded"),
        ("http://api.example.com\\@evil/", "@"),
        ("ftp://api.example.com", "scheme"),
        ("api.example.com", "http"),
        ("http://", "no host"),
        ("http://:80", "no host"),
        ("http://999.1.1.1", "neither"),
        ("http://1.2.3", "neither"),
        ("http://-bad.example", "not a valid name"),
        ("http://bad..example", "not a valid name"),
        ("http://[::1", "closing"),
        ("http://[::g]:80", "IPv6"),
        ("http://[::1]x", "after"),
        ("http://a b", "visible"),
    ])
    func refusesGateway(text: String, reasonWord: String) {
        #expect {
            _ = try BackendURL.gateway(text, setting: "API_GATEWAY")
        } throws: { error in
            "\(error)".hasPrefix("API_GATEWAY is invalid: ") && "\(error)".contains(reasonWord)
        }
    }

    @Test(arguments: ["api/auth/logout", "/api/auth/logout", "logout?all=1", "v1/sessions/current:revoke"])
    func acceptsEndpoint(text: String) throws {
        #expect(try BackendURL.endpoint(text, setting: "EP_AUTH_LOGOUT") == text)
    }

    @Test(arguments: [
        ("../../admin/purge", "segments"),
        ("api/./logout", "segments"),
        ("api/..", "segments"),
        ("%2e%2e/admin", "percent-encoded"),
        ("api/%2F/x", "percent-encoded"),
        ("http://evil.example/x", "not a URL"),
        ("//evil.example/x", "not a URL"),
        ("javascript:alert(1)", "not a URL"),
        ("logout#frag", "fragment"),
        ("a\\..\\b", "backslash"),
        ("///", "not a path"),
        ("a b", "not a path"),
    ])
    func refusesEndpoint(text: String, reasonWord: String) {
        #expect {
            _ = try BackendURL.endpoint(text, setting: "EP_AUTH_LOGOUT")
        } throws: { error in
            "\(error)".hasPrefix("EP_AUTH_LOGOUT is invalid: ") && "\(error)".contains(reasonWord)
        }
    }
}
