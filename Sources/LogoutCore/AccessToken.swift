import Crypto

/// A backend access token taken from a session, safe to put in an `Authorization` header.
///
/// It holds only visible ASCII without spaces (0x21...0x7E), so no CR, LF or other control byte
/// can reach the backend request. Its description is a fingerprint, never the token.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible {
    /// The token itself. Goes into the backend request and nowhere else.
    public let value: String

    /// Accepts `bytes` as a token when it is non-empty visible ASCII without spaces.
    public init?(validating bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty else { return nil }
        for byte in bytes where byte < 0x21 || byte > 0x7E { return nil }
        value = String(decoding: bytes, as: UTF8.self)
    }

    /// The first 8 bytes of the token's SHA-256, in hex: enough to match log lines, useless to an attacker.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Array(value.utf8))
        let hexDigits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for (index, byte) in digest.prefix(8).enumerated() {
                buffer[2 * index] = hexDigits[Int(byte >> 4)]
                buffer[2 * index + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return 16
        }
    }

    public var description: String { "AccessToken(\(fingerprint))" }
}
