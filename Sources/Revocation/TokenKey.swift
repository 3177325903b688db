import Crypto
import LogoutCore

/// What the dedup table stores instead of a token: the first 16 bytes of an HMAC-SHA256 of
/// the token under a random per-process key. Useless outside this process, and 128 bits make
/// an accidental collision (two users sharing one entry) negligible.
struct TokenKey: Hashable, Sendable {
    var high: UInt64
    var low: UInt64
}

/// Computes `TokenKey`s under one key, drawn at random per process unless a test gives one.
struct TokenKeyer: Sendable {
    private let key: SymmetricKey

    init(key: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.key = key
    }

    /// A fixed key, for tests.
    init(keyBytes: [UInt8]) {
        self.init(key: SymmetricKey(data: keyBytes))
    }

    func key(for token: AccessToken) -> TokenKey {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(token.value.utf8), using: key)
        return mac.withUnsafeBytes { bytes in
            var high: UInt64 = 0
            var low: UInt64 = 0
            for index in 0..<8 {
                high = high << 8 | UInt64(bytes[index])
                low = low << 8 | UInt64(bytes[8 + index])
            }
            return TokenKey(high: high, low: low)
        }
    }
}
