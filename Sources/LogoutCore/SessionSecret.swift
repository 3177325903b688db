import Crypto

/// A secret the login service seals sessions with, turned into its AES-256 key once, at start-up.
///
/// The key is the SHA-256 digest of the secret's UTF-8 bytes, as the origin derives it (no KDF,
/// no salt). The description never shows the secret or the key.
public struct SessionSecret: Sendable, CustomStringConvertible {
    /// The shortest secret accepted, as the origin documents it.
    public static let minimumLength = 32
    /// The origin's fallback when no secret is set; anyone can mint cookies with it.
    static let originFallback = "default-secret"

    let key: SymmetricKey

    /// Derives the key from `secret`, refusing secrets too short or known to the world.
    /// - Parameter setting: the configuration name to blame in the error.
    public init(_ secret: String, setting: String) throws(CrocanteError) {
        guard secret != Self.originFallback else {
            throw .invalidSetting(setting, reason: "the origin's public fallback secret is refused")
        }
        guard secret.utf8.count >= Self.minimumLength else {
            throw .invalidSetting(setting, reason: "must be at least \(Self.minimumLength) bytes")
        }
        key = SymmetricKey(data: SHA256.hash(data: Array(secret.utf8)))
    }

    public var description: String { "SessionSecret(redacted)" }
}
