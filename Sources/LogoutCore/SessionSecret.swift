import Crypto

/// A secret the login service seals sessions with, turned into its AES-256 key once, at start-up.
///
/// The key is the SHA-256 digest of the secret's UTF-8 bytes, as the origin derives it (no KDF,
/// no salt). The spool's key is derived from the same bytes with HKDF-SHA256 under its own label,
/// so a spool file never shares a key with a cookie. The description never shows the secret or the keys.
public struct SessionSecret: Sendable, CustomStringConvertible {
    /// The shortest secret accepted, as the origin documents it.
    public static let minimumLength = 32
    /// The origin's fallback when no secret is set; anyone can mint cookies with it.
    static let originFallback = "default-secret"

    let key: SymmetricKey
    /// Seals revocation records on disk (RevocationSpool); never the cookie key.
    package let spoolKey: SymmetricKey
    /// The HKDF `info` label that keeps the spool key apart from every other use of the secret.
    static let spoolKeyLabel = "crocante-logout spool v1"
    /// Seals tokens in the fleet's outbox table (RevocationOutbox); the same on every host with this secret.
    package let outboxSealKey: SymmetricKey
    /// Keys the outbox's rows: every host with this secret finds one token under one key.
    package let outboxRowKey: SymmetricKey
    static let outboxSealLabel = "crocante-logout outbox seal v1"
    static let outboxRowLabel = "crocante-logout outbox row key v1"

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
        let material = SymmetricKey(data: Array(secret.utf8))
        func derived(_ label: String) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: material, info: Array(label.utf8), outputByteCount: 32)
        }
        spoolKey = derived(Self.spoolKeyLabel)
        outboxSealKey = derived(Self.outboxSealLabel)
        outboxRowKey = derived(Self.outboxRowLabel)
    }

    public var description: String { "SessionSecret(redacted)" }
}
