import Crypto
import LogoutCore
import Testing

@testable import Revocation

/// The keyer reuses one prepared HMAC state: every key must still be HMAC-SHA256 of the token
/// alone, whatever was keyed before it.
@Suite struct TokenKeyerTests {
    static let keyBytes = [UInt8](repeating: 7, count: 32)

    /// The reference: a fresh HMAC for each token, its first 16 bytes as two big-endian halves.
    static func reference(_ token: String) -> TokenKey {
        let mac = Array(HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: SymmetricKey(data: keyBytes)))
        let high = mac[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = mac[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return TokenKey(high: high, low: low)
    }

    @Test(arguments: ["a", "token-1", String(repeating: "x", count: 64), String(repeating: "y", count: 3000)])
    func keyIsHMACOfTheTokenAlone(token: String) throws {
        let keyer = TokenKeyer(keyBytes: Self.keyBytes)
        let accessToken = try #require(AccessToken(validating: token.utf8))
        _ = keyer.key(for: try #require(AccessToken(validating: "before".utf8)))
        #expect(keyer.key(for: accessToken) == Self.reference(token))
        #expect(keyer.key(for: accessToken) == keyer.key(for: accessToken))
    }
}
