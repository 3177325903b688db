import Crypto
import LogoutCore

/// Seals token records with the current secret's spool key and opens them with the current or
/// the previous one: AES-256-GCM, the record's sequence number as authenticated data.
///
/// Nonces are counted, not drawn: a random 96-bit start per seal (per spool, so per process)
/// plus the record's sequence number, which the spool never repeats. Unique under a key as GCM
/// requires (two processes collide only if their ranges overlap, as unlikely as two random
/// nonces), and no `getrandom(2)` per record: a random 12-byte nonce cost two system calls.
struct SpoolSeal: Sendable {
    /// Current first; the first seals.
    let keys: [SymmetricKey]
    private let nonceStart: (high: UInt32, low: UInt64)

    init(secrets: [SessionSecret]) {
        keys = secrets.map(\.spoolKey)
        var generator = SystemRandomNumberGenerator()
        nonceStart = (generator.next(), generator.next())
    }

    /// Nonce, ciphertext and tag of `loggedOutAt || token`.
    func seal(token: AccessToken, loggedOutAt: Int64, sequence: UInt64) throws -> [UInt8] {
        let plaintext = SpoolFormat.plaintext(token: token, loggedOutAt: loggedOutAt)
        let box = try AES.GCM.seal(
            plaintext, using: keys[0], nonce: nonce(sequence: sequence),
            authenticating: SpoolFormat.associatedData(sequence: sequence))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return Array(combined)
    }

    /// The start's high 32 bits, then its low 64 plus `sequence`.
    private func nonce(sequence: UInt64) throws -> AES.GCM.Nonce {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        SpoolFormat.appendLittleEndian(nonceStart.high, to: &bytes)
        SpoolFormat.appendLittleEndian(nonceStart.low &+ sequence, to: &bytes)
        return try AES.GCM.Nonce(data: bytes)
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
