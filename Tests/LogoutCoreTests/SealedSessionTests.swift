import Foundation
import LogoutCore
import Testing

/// Cookies sealed once by `scripts/origin-seal.js`, committed next to these tests.
private struct OriginVectors: Decodable {
    struct Case: Decodable {
        let name: String
        let cookie: String
        let token: String?
    }

    let secret: String
    let previousSecret: String
    let cases: [Case]

    static func load() throws -> OriginVectors {
        let url = try #require(
            Bundle.module.url(forResource: "origin-vectors", withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/origin-vectors.json is not in the test bundle")
        return try JSONDecoder().decode(OriginVectors.self, from: Data(contentsOf: url))
    }
}

/// base64url without padding, written with Foundation so the tests do not check ExtrasBase64 against itself.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}

@Suite struct SealedSessionTests {
    let secret = try! SessionSecret("test-secret-0123456789-abcdefghijklmnop", setting: "SESSION_SECRET")
    let otherSecret = try! SessionSecret("other-secret-0123456789-abcdefghijklmno", setting: "SESSION_SECRET")
    var opener: SealedSession.Opener { SealedSession.Opener(secrets: [secret]) }

    func seal(_ plaintext: String) throws -> String {
        try SealedSession.seal(plaintext: Array(plaintext.utf8), with: secret)
    }

    func seal(bytes: [UInt8]) throws -> String {
        try SealedSession.seal(plaintext: bytes, with: secret)
    }

    func open(_ cookie: String, with opener: SealedSession.Opener? = nil) -> String? {
        (opener ?? self.opener).token(fromCookieValue: Array(cookie.utf8))?.value
    }

    // MARK: Committed vectors from the origin's algorithm

    @Test func opensEveryOriginVector() throws {
        let vectors = try OriginVectors.load()
        #expect(vectors.cases.count >= 7)
        let opener = SealedSession.Opener(secrets: [
            try SessionSecret(vectors.secret, setting: "SESSION_SECRET"),
            try SessionSecret(vectors.previousSecret, setting: "SESSION_SECRET_PREVIOUS"),
        ])
        for vector in vectors.cases {
            #expect(open(vector.cookie, with: opener) == vector.token, "\(vector.name)")
        }
        #expect(vectors.cases.contains { $0.token != nil })
        #expect(vectors.cases.contains { $0.token == nil })
    }

    @Test func previousSecretVectorNeedsThePreviousSecret() throws {
        let vectors = try OriginVectors.load()
        let rotated = try #require(vectors.cases.first { $0.name.contains("previous secret") })
        let currentOnly = SealedSession.Opener(secrets: [try SessionSecret(vectors.secret, setting: "SESSION_SECRET")])
        let previousOnly = SealedSession.Opener(secrets: [try SessionSecret(vectors.previousSecret, setting: "SESSION_SECRET")])
        #expect(open(rotated.cookie, with: currentOnly) == nil)
        #expect(open(rotated.cookie, with: previousOnly) == rotated.token)
        #expect(rotated.token != nil)
        // And the current secret's vectors do not open with the previous secret alone.
        let current = try #require(vectors.cases.first { $0.name.contains("JWT") })
        #expect(open(current.cookie, with: previousOnly) == nil)
        #expect(open(current.cookie, with: currentOnly) == current.token)
    }

    // MARK: Generated cookies

    @Test func roundTripsTheOriginsJSONPlaintext() throws {
        let plaintext = try SealedSession.plaintext(token: "abc.def-ghi_jkl", issuedAtMilliseconds: 1_732_400_000_000)
        let payload = try JSONSerialization.jsonObject(with: plaintext) as? [String: Any]
        #expect(payload?["token"] as? String == "abc.def-ghi_jkl")
        #expect((payload?["issuedAt"] as? NSNumber)?.int64Value == 1_732_400_000_000)

        let cookie = try SealedSession.seal(plaintext: plaintext, with: secret)
        #expect(open(cookie) == "abc.def-ghi_jkl")
        #expect(!cookie.contains("=") && !cookie.contains("+") && !cookie.contains("/"))
        #expect(Base64URL.decode(cookie)?.count == 32 + plaintext.count)
    }

    @Test func sealUsesAFreshIV() throws {
        let first = try seal("same-token")
        let second = try seal("same-token")
        #expect(first != second)
        #expect(Base64URL.decode(first)?.prefix(16) != Base64URL.decode(second)?.prefix(16))
    }

    @Test func wrongKeyDoesNotOpen() throws {
        let cookie = try seal("token-1")
        #expect(open(cookie, with: SealedSession.Opener(secrets: [otherSecret])) == nil)
        #expect(open(cookie, with: SealedSession.Opener(secrets: [otherSecret, secret])) == "token-1")
        #expect(open(cookie, with: SealedSession.Opener(secrets: [])) == nil)
    }

    @Test func shorterThan32DecodedBytesIsNoSession() throws {
        let sealed = try #require(Base64URL.decode(try seal("token-1")))
        for length in 0...31 {
            let cookie = Base64URL.encode(Array(sealed.prefix(length)))
            #expect(open(cookie) == nil, "\(length) bytes")
        }
    }

    @Test func exactly32BytesIsNoSession() throws {
        // An empty plaintext seals to iv ‖ tag alone: the tag verifies, the token is empty.
        let empty = try seal("")
        #expect(Base64URL.decode(empty)?.count == 32)
        #expect(open(empty) == nil)
        // A longer cookie cut to its iv and tag fails the tag check.
        let sealed = try #require(Base64URL.decode(try seal("token-1")))
        #expect(open(Base64URL.encode(Array(sealed.prefix(32)))) == nil)
    }

    @Test(arguments: [0, 15, 16, 31, 32, 40])
    func flippedBitIsNoSession(byte: Int) throws {
        // iv is bytes 0..<16, tag 16..<32, ciphertext 32...
        let cookie = try seal("token-abcdefghi")
        var sealed = try #require(Base64URL.decode(cookie))
        #expect(sealed.count == 32 + 15)
        #expect(open(Base64URL.encode(sealed)) == "token-abcdefghi")
        for bit in [0, 7] {
            sealed[byte] ^= 1 << bit
            #expect(open(Base64URL.encode(sealed)) == nil, "byte \(byte) bit \(bit)")
            sealed[byte] ^= 1 << bit
        }
    }

    @Test(arguments: ["!", "+", "/", " ", "%", "."])
    func characterOutsideBase64URLIsNoSession(character: String) throws {
        // 8 + 32 = 40 bytes: 54 characters, so one more is still a valid base64url length.
        let cookie = try seal("token-12")
        #expect(cookie.count == 54)
        #expect(open(cookie) == "token-12")
        for offset in [0, 27, 53] {
            let position = cookie.index(cookie.startIndex, offsetBy: offset)
            var replaced = cookie
            replaced.replaceSubrange(position...position, with: character)
            #expect(open(replaced) == nil, "replaced at \(offset)")
        }
        var inserted = cookie
        inserted.insert(contentsOf: character, at: cookie.index(cookie.startIndex, offsetBy: 27))
        #expect(open(inserted) == nil)
        #expect(open(cookie + character) == nil)
        #expect(open(character + cookie) == nil)
    }

    @Test func standardBase64AlphabetIsNoSession() throws {
        // Find a cookie whose base64url needs `-` or `_`, then spell it with `+` and `/`.
        var cookie = try seal("token-with-some-length-to-it")
        for _ in 0..<200 where !cookie.contains(where: { $0 == "-" || $0 == "_" }) {
            cookie = try seal("token-with-some-length-to-it")
        }
        #expect(cookie.contains(where: { $0 == "-" || $0 == "_" }))
        let standard = cookie.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        #expect(open(cookie) == "token-with-some-length-to-it")
        #expect(open(standard) == nil)
    }

    @Test func paddedFormIsAccepted() throws {
        // 32 + 2 = 34 bytes encode with `==`, 32 + 3 = 35 bytes with `=`.
        let two = try seal("ab")
        #expect(two.count % 4 == 2)
        #expect(open(two + "==") == "ab")
        #expect(open(two) == "ab")
        let one = try seal("abc")
        #expect(one.count % 4 == 3)
        #expect(open(one + "=") == "abc")
        #expect(open(one) == "abc")
    }

    @Test func emptyCookieValueIsNoSession() {
        #expect(open("") == nil)
        #expect(open("=") == nil)
        #expect(open("====") == nil)
    }

    /// Plaintexts the origin's login could have sealed, and the token expected from each.
    static let plaintexts: [(String, String?)] = [
        (#"{"token":"abc","issuedAt":1732400000000}"#, "abc"),
        (#"{"issuedAt":1,"token":"abc"}"#, "abc"),
        (#"{"token":"abc"}"#, "abc"),
        (" \n\t{\"token\":\"abc\",\"issuedAt\":1}", "abc"),
        (#"{"token":"a\/b\u0063"}"#, "a/bc"),
        (#"{"token":12345,"issuedAt":1}"#, nil),
        (#"{"token":null,"issuedAt":1}"#, nil),
        (#"{"token":true}"#, nil),
        (#"{"token":["abc"]}"#, nil),
        (#"{"token":{"value":"abc"}}"#, nil),
        (#"{"issuedAt":1}"#, nil),
        (#"{}"#, nil),
        (#"{"token":"","issuedAt":1}"#, nil),
        (#"{"token":"a b","issuedAt":1}"#, nil),
        (#"{"token":"a\r\nX-Injected: 1","issuedAt":1}"#, nil),
        (#"{"token":"a\u0000b"}"#, nil),
        (#"{"token":"tökén"}"#, nil),
        // JWT-shaped tokens, in JSON and raw
        (#"{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-_x","issuedAt":1}"#, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-_x"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-_x", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-_x"),
        // legacy raw tokens: the whole plaintext is the token
        ("legacy-raw-token-42", "legacy-raw-token-42"),
        ("x", "x"),
        ("{not-json", "{not-json"),
        ("legacy\r\ntoken", nil),
        ("legacy\ntoken", nil),
        ("legacy token", nil),
        (" legacy", nil),
        ("legacy\u{01}token", nil),
        ("legacy\ttoken", nil),
        ("legacy\u{7F}", nil),
        ("légacy", nil),
        ("", nil),
    ]

    @Test(arguments: plaintexts)
    func readsTheTokenOutOfThePlaintext(plaintext: String, expected: String?) throws {
        #expect(open(try seal(plaintext)) == expected)
    }

    @Test func legacyTokenOf3KiBOpens() throws {
        let visible = (0x21...0x7E).map { Character(Unicode.Scalar(UInt8($0))) }
        let token = String((0..<3072).map { visible[$0 % visible.count] })
        #expect(token.utf8.count == 3072)
        #expect(open(try seal(token)) == token)
        let json = try SealedSession.plaintext(token: token, issuedAtMilliseconds: 1)
        #expect(open(try SealedSession.seal(plaintext: json, with: secret)) == token)
    }

    @Test(arguments: [
        [0xFF, 0xFE, 0x41],
        [0x61, 0x80, 0x62],
        [0xC3, 0x28],
        Array(#"{"token":"#.utf8) + [0x22, 0xFF, 0x22, 0x7D],
        [0x7B] + [0xFF] + [0x7D],
    ] as [[UInt8]])
    func invalidUTF8PlaintextIsNoSession(plaintext: [UInt8]) throws {
        #expect(open(try seal(bytes: plaintext)) == nil)
    }

    // MARK: Cookies minted by Node at test time, exactly as the origin does

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `/usr/bin/node` with `arguments`, `environment` added, and `input` on stdin; returns stdout.
    static func node(_ arguments: [String], environment: [String: String], input: Data) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/node")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        // node reads all of stdin before it writes anything, so writing first cannot deadlock.
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        let output = try stdout.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "node exited with \(process.terminationStatus)")
        return String(decoding: output, as: UTF8.self)
    }

    /// Visible ASCII tokens, deterministic, including `"` and `\` that JSON must escape.
    static func token(length: Int, seed: Int) -> String {
        let visible = Array((0x21...0x7E).map { Character(Unicode.Scalar(UInt8($0))) })
        var state = UInt64(truncatingIfNeeded: seed &* 0x9E37_79B9 &+ length)
        var characters: [Character] = []
        for _ in 0..<length {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            characters.append(visible[Int(state >> 33) % visible.count])
        }
        // A raw token that starts with `{` could happen to be a JSON object; keep legacy ones plain.
        if characters.first == "{" { characters[0] = "t" }
        return String(characters)
    }

    /// The plaintext the origin's login writes.
    struct OriginPayload: Encodable {
        let token: String
        let issuedAt: Int64
    }

    @Test func opensCookiesMintedByTheOriginsAlgorithmInNode() throws {
        let script = Self.packageRoot.appendingPathComponent("scripts/origin-seal.js").path
        #expect(FileManager.default.fileExists(atPath: script), "\(script) is missing")
        let secretText = "node-minted-secret-0123456789-abcdefgh"
        let secret = try SessionSecret(secretText, setting: "SESSION_SECRET")

        let lengths = [1, 2, 3, 15, 16, 17, 64, 255, 256, 1024, 2048, 3072]
        var plaintexts: [String] = []
        var tokens: [String] = []
        for (index, length) in lengths.enumerated() {
            let jsonToken = Self.token(length: length, seed: index)
            // JSON.stringify's output: no slash escaping, `"` and `\` escaped.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            let json = try encoder.encode(OriginPayload(token: jsonToken, issuedAt: 1_732_400_000_000 + Int64(index)))
            plaintexts.append(String(decoding: json, as: UTF8.self))
            tokens.append(jsonToken)

            let rawToken = Self.token(length: length, seed: 1000 + index)
            plaintexts.append(rawToken)
            tokens.append(rawToken)
        }
        #expect(tokens.contains { $0.contains("\"") } && tokens.contains { $0.contains("\\") })

        let output = try Self.node(
            [script], environment: ["SESSION_SECRET": secretText], input: try JSONEncoder().encode(plaintexts))
        let cookies = output.split(separator: "\n").map(String.init)
        try #require(cookies.count == plaintexts.count)

        let opener = SealedSession.Opener(secrets: [secret])
        for (index, cookie) in cookies.enumerated() {
            #expect(
                opener.token(fromCookieValue: Array(cookie.utf8))?.value == tokens[index],
                "plaintext \(index) (\(tokens[index].utf8.count) bytes)")
            #expect(SealedSession.Opener(secrets: [otherSecret]).token(fromCookieValue: Array(cookie.utf8)) == nil)
        }
    }

    @Test func nodeOpensCookiesSealedHere() throws {
        // The reverse direction: what `seal` writes is what the origin can read.
        let secretText = "node-minted-secret-0123456789-abcdefgh"
        let secret = try SessionSecret(secretText, setting: "SESSION_SECRET")
        let plaintexts = ["", "x", #"{"token":"abc","issuedAt":1}"#, String(repeating: "z", count: 3072)]
        let cookies = try plaintexts.map { try SealedSession.seal(plaintext: Array($0.utf8), with: secret) }
        let opener = #"""
            const crypto = require('crypto');
            const key = crypto.createHash('sha256').update(process.env.SESSION_SECRET).digest();
            let input = '';
            process.stdin.on('data', (c) => { input += c; });
            process.stdin.on('end', () => {
              const out = JSON.parse(input).map((cookie) => {
                const b = Buffer.from(cookie, 'base64url');
                const d = crypto.createDecipheriv('aes-256-gcm', key, b.subarray(0, 16));
                d.setAuthTag(b.subarray(16, 32));
                return Buffer.concat([d.update(b.subarray(32)), d.final()]).toString('utf8');
              });
              process.stdout.write(JSON.stringify(out));
            });
            """#
        let output = try Self.node(
            ["-e", opener], environment: ["SESSION_SECRET": secretText], input: try JSONEncoder().encode(cookies))
        let opened = try JSONDecoder().decode([String].self, from: Data(output.utf8))
        #expect(opened == plaintexts)
    }
}
