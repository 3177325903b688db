import CLibcrypto
import Crypto

/// One AES-256-GCM context of Debian's libcrypto (`EVP_CIPHER_CTX`), keyed once: each message
/// then sets only its nonce, its associated data and its tag.
///
/// swift-crypto has no such reuse: every `AES.GCM.open` or `seal` expands the key, derives the
/// GHASH key and copies the box through `Data` (16.6k instructions to open a cookie, 17.9k to
/// seal a spool record, against about 3k here). Every libcrypto call of the project is in this
/// file. A context is not thread-safe, so it is unavailable for Sendable; `GCMKeyring` lends each
/// to one thread at a time.
package final class GCMContext {
    package enum Direction {
        case encrypt
        case decrypt
    }

    package static let tagLength = 16

    package let direction: Direction
    private let context: OpaquePointer

    /// `EVP_CIPHER_CTX_new`, `EVP_CipherInit_ex` with `EVP_aes_256_gcm`, `EVP_CIPHER_CTX_ctrl`
    /// (`EVP_CTRL_GCM_SET_IVLEN`), then `EVP_CipherInit_ex` again with the key.
    ///
    /// libcrypto fails here only when it cannot allocate or its configuration refuses AES-GCM,
    /// which nothing can recover from (`GCMKeyring` makes its first contexts at start-up).
    init(key: SymmetricKey, nonceLength: Int, direction: Direction) {
        precondition(key.bitCount == 256, "AES-256-GCM takes a 256-bit key")
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed") }
        self.context = context
        self.direction = direction
        let encrypt: Int32 = direction == .encrypt ? 1 : 0
        Self.check(EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil, encrypt), "EVP_CipherInit_ex")
        Self.check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceLength), nil), "EVP_CIPHER_CTX_ctrl")
        key.withUnsafeBytes { key in
            Self.check(EVP_CipherInit_ex(context, nil, nil, Self.bytes(key), nil, encrypt), "EVP_CipherInit_ex")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Set-up calls: a failure there is a broken libcrypto, not a bad message.
    private static func check(_ result: Int32, _ function: StaticString) {
        if result != 1 { fatalError("\(function) failed") }
    }

    /// `EVP_DecryptInit_ex` (the nonce), `EVP_DecryptUpdate` (associated data, then ciphertext),
    /// `EVP_CIPHER_CTX_ctrl` (`EVP_CTRL_GCM_SET_TAG`), `EVP_DecryptFinal_ex`: whether `tag`
    /// verifies. `plaintext` (as long as `ciphertext`) is only meaningful when it does.
    package func open(
        nonce: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer,
        authenticating associatedData: UnsafeRawBufferPointer, into plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        precondition(direction == .decrypt && tag.count == Self.tagLength && plaintext.count == ciphertext.count)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(context, nil, nil, nil, Self.bytes(nonce)) == 1,
            associatedData.isEmpty
                || EVP_DecryptUpdate(context, nil, &length, Self.bytes(associatedData), Int32(associatedData.count)) == 1,
            ciphertext.isEmpty
                || EVP_DecryptUpdate(context, Self.mutableBytes(plaintext), &length, Self.bytes(ciphertext), Int32(ciphertext.count)) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tag.count), UnsafeMutableRawPointer(mutating: tag.baseAddress)) == 1
        else { return false }
        // GCM has no padding: nothing is written here, but a buffer must be given.
        var scratch: UInt8 = 0
        return EVP_DecryptFinal_ex(context, &scratch, &length) == 1
    }

    /// `EVP_EncryptInit_ex` (the nonce), `EVP_EncryptUpdate` (associated data, then plaintext),
    /// `EVP_EncryptFinal_ex`, `EVP_CIPHER_CTX_ctrl` (`EVP_CTRL_GCM_GET_TAG`): fills `ciphertext`
    /// (as long as `plaintext`) and `tag`. False only for a broken libcrypto.
    package func seal(
        nonce: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer,
        into ciphertext: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer
    ) -> Bool {
        precondition(direction == .encrypt && tag.count == Self.tagLength && plaintext.count == ciphertext.count)
        var length: Int32 = 0
        var scratch: UInt8 = 0
        return EVP_EncryptInit_ex(context, nil, nil, nil, Self.bytes(nonce)) == 1
            && (associatedData.isEmpty
                || EVP_EncryptUpdate(context, nil, &length, Self.bytes(associatedData), Int32(associatedData.count)) == 1)
            && (plaintext.isEmpty
                || EVP_EncryptUpdate(context, Self.mutableBytes(ciphertext), &length, Self.bytes(plaintext), Int32(plaintext.count)) == 1)
            && EVP_EncryptFinal_ex(context, &scratch, &length) == 1
            && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tag.count), tag.baseAddress) == 1
    }

    private static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    private static func mutableBytes(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}

@available(*, unavailable)
extension GCMContext: Sendable {}
