import LogoutCore
import Testing

@testable import Revocation

/// The keyer is SipHash-2-4-128 of the token alone: the reference's own vectors (key 00..0f,
/// message 00..(n-1)), and the token's bytes exactly.
@Suite struct TokenKeyerTests {
    static let referenceKey = [UInt8](0..<16)

    /// vectors_sip128[n] of the reference implementation (github.com/veorq/SipHash, vectors.h).
    static let vectors: [(length: Int, output: [UInt8])] = [
        (0, [0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93]),
        (1, [0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45]),
        (7, [0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39]),
        (8, [0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4]),
        (15, [0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9]),
        (16, [0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05, 0x77]),
        (63, [0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c]),
    ]

    static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    @Test(arguments: vectors.map(\.length))
    func referenceVector(length: Int) throws {
        let output = try #require(Self.vectors.first { $0.length == length }).output
        let message = [UInt8]((0..<length).map { UInt8($0) })
        let (first, second) = message.withUnsafeBytes {
            TokenKeyer.sipHash128($0, k0: Self.littleEndian(Self.referenceKey[0..<8]), k1: Self.littleEndian(Self.referenceKey[8..<16]))
        }
        #expect(first == Self.littleEndian(output[0..<8]))
        #expect(second == Self.littleEndian(output[8..<16]))
    }

    @Test(arguments: ["a", "token-1", String(repeating: "x", count: 64), String(repeating: "y", count: 3000)])
    func keyIsSipHashOfTheTokenAlone(token: String) throws {
        let keyer = TokenKeyer(keyBytes: Self.referenceKey)
        let accessToken = try #require(AccessToken(validating: token.utf8))
        _ = keyer.key(for: try #require(AccessToken(validating: "before".utf8)))
        let (first, second) = Array(token.utf8).withUnsafeBytes {
            TokenKeyer.sipHash128($0, k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908)
        }
        #expect(keyer.key(for: accessToken) == TokenKey(high: first, low: second))
        #expect(keyer.key(for: accessToken) == keyer.key(for: accessToken))
    }

    @Test func keyDependsOnTheKeyAndTheToken() throws {
        let token = try #require(AccessToken(validating: "token-1".utf8))
        let other = try #require(AccessToken(validating: "token-2".utf8))
        let keyer = TokenKeyer(keyBytes: Self.referenceKey)
        #expect(keyer.key(for: token) != keyer.key(for: other))
        #expect(keyer.key(for: token) != TokenKeyer(keyBytes: [UInt8](repeating: 7, count: 16)).key(for: token))
        #expect(TokenKeyer().key(for: token) != TokenKeyer().key(for: token))
    }
}
