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
    /// HMAC with the key already absorbed: `HMAC.init(key:)` pads the key and hashes both pads,
    /// two thirds of a key's cost (15.4k of 24.8k Ir). Each key copies this state instead; its
    /// hashers are copy-on-write, so the copy is one small allocation.
    private let prepared: HMAC<SHA256>

    init(key: SymmetricKey = SymmetricKey(size: .bits256)) {
        prepared = HMAC<SHA256>(key: key)
    }

    /// A fixed key, for tests.
    init(keyBytes: [UInt8]) {
        self.init(key: SymmetricKey(data: keyBytes))
    }

    func key(for token: AccessToken) -> TokenKey {
        var hmac = prepared
        var value = token.value
        // The token's own UTF-8 storage, not a copy of it into an array.
        value.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
        return hmac.finalize().withUnsafeBytes { bytes in
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
