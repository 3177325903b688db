import Crypto
import LogoutCore

/// How a token sits in the shared table: found under an HMAC of it that every host with the
/// same session secret computes alike, and sealed (AES-256-GCM) with the row key as associated
/// data, so a sealed token moved to another row does not open.
///
/// Keys come from the session secrets (HKDF, labels of their own): rotating `SESSION_SECRET`
/// with the old one kept as `SESSION_SECRET_PREVIOUS` still opens the rows sealed before.
struct OutboxSeal: Sendable {
    private let rowKey: SymmetricKey
    private let sealKey: SymmetricKey
    /// The seal keys of every configured secret, current first.
    private let openingKeys: [SymmetricKey]

    init(secrets: [SessionSecret]) {
        precondition(!secrets.isEmpty, "the configuration always holds SESSION_SECRET")
        rowKey = secrets[0].outboxRowKey
        sealKey = secrets[0].outboxSealKey
        openingKeys = secrets.map(\.outboxSealKey)
    }

    /// 32 bytes: the row's primary key.
    func rowKey(for token: AccessToken) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(token.value.utf8), using: rowKey))
    }

    /// nonce ‖ ciphertext ‖ tag, bound to `rowKey`.
    func seal(_ token: AccessToken, rowKey: [UInt8]) -> [UInt8] {
        // AES-GCM with a random 96-bit nonce cannot fail for a key of the right size.
        let box = try! AES.GCM.seal(Array(token.value.utf8), using: sealKey, authenticating: rowKey)
        return Array(box.combined!)
    }

    /// The token, or nil when no configured secret opens it (rotated away, or not ours).
    func open(_ sealed: [UInt8], rowKey: [UInt8]) -> AccessToken? {
        guard let box = try? AES.GCM.SealedBox(combined: sealed) else { return nil }
        for key in openingKeys {
            if let plain = try? AES.GCM.open(box, using: key, authenticating: rowKey),
                let token = AccessToken(validating: plain)
            {
                return token
            }
        }
        return nil
    }
}
