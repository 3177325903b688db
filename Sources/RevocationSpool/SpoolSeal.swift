import Crypto
import LogoutCore

/// Seals token records with the current secret's spool key and opens them with the current or
/// the previous one: AES-256-GCM, a random 12-byte nonce per record, the record's sequence
/// number as authenticated data.
struct SpoolSeal: Sendable {
    /// Current first; the first seals.
    let keys: [SymmetricKey]

    init(secrets: [SessionSecret]) {
        keys = secrets.map(\.spoolKey)
    }

    /// Nonce, ciphertext and tag of `loggedOutAt || token`.
    func seal(token: AccessToken, loggedOutAt: Int64, sequence: UInt64) throws -> [UInt8] {
        let plaintext = SpoolFormat.plaintext(token: Array(token.value.utf8), loggedOutAt: loggedOutAt)
        let box = try AES.GCM.seal(plaintext, using: keys[0], authenticating: SpoolFormat.associatedData(sequence: sequence))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return Array(combined)
    }

    /// The token and its logout time, or nil when no key opens the box (or it holds no valid token).
    func open(_ sealed: [UInt8], sequence: UInt64) -> (token: AccessToken, loggedOutAt: Int64)? {
        guard let box = try? AES.GCM.SealedBox(combined: sealed) else { return nil }
        let associatedData = SpoolFormat.associatedData(sequence: sequence)
        for key in keys {
            guard let plaintext = try? AES.GCM.open(box, using: key, authenticating: associatedData) else { continue }
            let bytes = Array(plaintext)
            guard bytes.count > 8, let token = AccessToken(validating: bytes[8...]) else { return nil }
            let loggedOutAt = Int64(bitPattern: SpoolFormat.readLittleEndian(UInt64.self, bytes, at: 0))
            return (token, loggedOutAt)
        }
        return nil
    }
}
