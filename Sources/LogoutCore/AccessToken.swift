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
        guard !bytes.isEmpty, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        value = String(decoding: bytes, as: UTF8.self)
    }

    /// The first 8 bytes of the token's SHA-256, in hex: enough to match log lines, useless to an attacker.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Array(value.utf8))
        return digest.prefix(8).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    public var description: String { "AccessToken(\(fingerprint))" }
}
