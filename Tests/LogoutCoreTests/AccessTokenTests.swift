import LogoutCore
import Testing

@Suite struct AccessTokenTests {
    /// Bytes offered as a token, and whether they make one: visible ASCII (0x21...0x7E) only, non-empty.
    static let candidates: [([UInt8], Bool)] = [
        (Array("abc".utf8), true),
        (Array("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-_x".utf8), true),
        (Array("!".utf8), true),  // 0x21, the lowest accepted
        (Array("~".utf8), true),  // 0x7E, the highest accepted
        (Array((0x21...0x7E) as ClosedRange<UInt8>), true),
        (Array(#"a"b\c"#.utf8), true),
        ([], false),
        (Array(" ".utf8), false),
        (Array("a b".utf8), false),
        (Array(" abc".utf8), false),
        (Array("abc ".utf8), false),
        (Array("a\tb".utf8), false),
        (Array("abc\r\nX-Injected: 1".utf8), false),
        (Array("abc\n".utf8), false),
        ([0x61, 0x00, 0x62], false),
        ([0x61, 0x1F], false),
        ([0x61, 0x7F], false),  // DEL
        ([0x61, 0x80], false),
        ([0xFF], false),
        (Array("tökén".utf8), false),
    ]

    @Test(arguments: candidates)
    func acceptsOnlyNonEmptyVisibleASCII(bytes: [UInt8], valid: Bool) {
        let token = AccessToken(validating: bytes)
        #expect((token != nil) == valid)
        if let token { #expect(Array(token.value.utf8) == bytes) }
    }

    @Test func fingerprintIsSixteenLowercaseHexCharacters() throws {
        for text in ["a", "abc", String(repeating: "z", count: 3072), "eyJhbGciOiJIUzI1NiJ9.e30.sig"] {
            let fingerprint = try #require(AccessToken(validating: text.utf8)).fingerprint
            #expect(fingerprint.count == 16)
            #expect(fingerprint.allSatisfy { "0123456789abcdef".contains($0) }, "\(fingerprint)")
        }
    }

    @Test func fingerprintIsTheFirstEightBytesOfSHA256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de ... (FIPS 180-2 example).
        #expect(AccessToken(validating: "abc".utf8)?.fingerprint == "ba7816bf8f01cfea")
        // Bytes below 0x10 keep their leading zero: SHA-256("token-2") = 0f6bffa9..., SHA-256("token-0") = 6c02cf20...
        #expect(AccessToken(validating: "token-2".utf8)?.fingerprint == "0f6bffa9661cb5dd")
        #expect(AccessToken(validating: "token-0".utf8)?.fingerprint == "6c02cf2083469e72")
    }

    @Test func fingerprintIsStableAndTellsTokensApart() throws {
        let tokens = try (0..<200).map { try #require(AccessToken(validating: "token-\($0)".utf8)) }
        let again = try (0..<200).map { try #require(AccessToken(validating: "token-\($0)".utf8)) }
        #expect(tokens.map(\.fingerprint) == again.map(\.fingerprint))
        #expect(Set(tokens.map(\.fingerprint)).count == tokens.count)
    }

    @Test func descriptionShowsTheFingerprintAndNeverTheToken() throws {
        let value = "super-secret-access-token-value"
        let token = try #require(AccessToken(validating: value.utf8))
        for text in [token.description, "\(token)", String(describing: token), String(reflecting: token)] {
            #expect(!text.contains(value), "\(text)")
            #expect(!text.contains("super-secret"), "\(text)")
            #expect(text.contains(token.fingerprint), "\(text)")
        }
        #expect(token.description == "AccessToken(\(token.fingerprint))")
    }

    @Test func equalTokensAreEqual() throws {
        let first = try #require(AccessToken(validating: "abc".utf8))
        let second = try #require(AccessToken(validating: Array("abc".utf8)))
        #expect(first == second)
        #expect(first != AccessToken(validating: "abd".utf8))
    }
}
