import Crypto
import LogoutCore

/// Seals token records with the current secret's spool key and opens them with the current or
/// the previous one: AES-256-GCM, the record's sequence number as authenticated data.
///
/// Nonces are counted, not drawn: a random 96-bit start per seal (per spool, so per process)
/// plus the record's sequence number, which the spool never repeats. Unique under a key as GCM
/// requires (two processes collide only if their ranges overlap, as unlikely as two random
/// nonces), and no `getrandom(2)` per record: a random 12-byte nonce cost two system calls.
///
/// Sealing goes through libcrypto contexts keyed once (`GCMKeyring`, issue 20): swift-crypto's
/// `AES.GCM.seal` keyed every record anew (17.9k instructions a record). Opening (read-back and
/// adoption, rare) stays with swift-crypto, so every record is also checked to be standard GCM.
struct SpoolSeal: Sendable {
    /// Current first; the first seals.
    let keys: [SymmetricKey]
    private let sealing: GCMKeyring
    private let nonceStart: (high: UInt32, low: UInt64)
    static let nonceLength = 12

    init(secrets: [SessionSecret]) {
        keys = secrets.map(\.spoolKey)
        sealing = GCMKeyring(keys: Array(keys.prefix(1)), nonceLength: Self.nonceLength, direction: .encrypt)
        var generator = SystemRandomNumberGenerator()
        nonceStart = (generator.next(), generator.next())
    }

    /// Nonce, ciphertext and tag of `loggedOutAt || token`.
    func seal(token: AccessToken, loggedOutAt: Int64, sequence: UInt64) throws -> [UInt8] {
        let plaintext = SpoolFormat.plaintext(token: token, loggedOutAt: loggedOutAt)
        let associatedData = SpoolFormat.associatedData(sequence: sequence)
        var sealed: [UInt8] = []
        sealed.reserveCapacity(Self.nonceLength + plaintext.count + GCMContext.tagLength)
        appendNonce(sequence: sequence, to: &sealed)
        sealed += repeatElement(0, count: plaintext.count + GCMContext.tagLength)
        let ciphertextEnd = Self.nonceLength + plaintext.count
        let done = sealed.withUnsafeMutableBytes { sealed in
            plaintext.withUnsafeBytes { plaintext in
                associatedData.withUnsafeBytes { associatedData in
                    sealing.withContexts { contexts in
                        contexts[0].seal(
                            nonce: UnsafeRawBufferPointer(rebasing: sealed[..<Self.nonceLength]), plaintext: plaintext,
                            authenticating: associatedData,
                            into: UnsafeMutableRawBufferPointer(rebasing: sealed[Self.nonceLength..<ciphertextEnd]),
                            tag: UnsafeMutableRawBufferPointer(rebasing: sealed[ciphertextEnd...]))
                    }
                }
            }
        }
        guard done else { throw CryptoKitError.incorrectParameterSize }
        return sealed
    }

    /// The start's high 32 bits, then its low 64 plus `sequence`.
    private func appendNonce(sequence: UInt64, to bytes: inout [UInt8]) {
        SpoolFormat.appendLittleEndian(nonceStart.high, to: &bytes)
        SpoolFormat.appendLittleEndian(nonceStart.low &+ sequence, to: &bytes)
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
