import LogoutCore

/// What the dedup table stores instead of a token: SipHash-2-4-128 of the token under a random
/// per-process key. Useless outside this process (it is never written anywhere), and 128 bits
/// make an accidental collision (two users sharing one entry) negligible.
struct TokenKey: Hashable, Sendable {
    var high: UInt64
    var low: UInt64
}

/// Computes `TokenKey`s under one 128-bit key, drawn at random per process unless a test gives one.
///
/// SipHash is a PRF made for short inputs: with the key secret, finding two tokens under one key
/// (one user's logout hiding another's) takes as many guesses as for any 128-bit PRF, and nothing
/// tells the guesser whether one hit (a duplicate is answered like any logout). HMAC-SHA256, used
/// before, gives no more here and cost 6.5k instructions a token against about 1k (issue 20).
/// The outbox's row key (`OutboxSeal`), shared by the fleet and stored, stays an HMAC.
struct TokenKeyer: Sendable {
    private let k0: UInt64
    private let k1: UInt64

    init() {
        var generator = SystemRandomNumberGenerator()
        k0 = generator.next()
        k1 = generator.next()
    }

    /// A fixed key of 16 bytes, for tests (read little-endian, as SipHash's reference does).
    init(keyBytes: [UInt8]) {
        precondition(keyBytes.count == 16, "SipHash takes a 128-bit key")
        k0 = Self.littleEndian(keyBytes[0..<8])
        k1 = Self.littleEndian(keyBytes[8..<16])
    }

    func key(for token: AccessToken) -> TokenKey {
        var value = token.value
        // The token's own UTF-8 storage, not a copy of it into an array.
        let (first, second) = value.withUTF8 { Self.sipHash128(UnsafeRawBufferPointer($0), k0: k0, k1: k1) }
        return TokenKey(high: first, low: second)
    }

    /// SipHash-2-4 with its 128-bit output: the two output words, as the reference writes them
    /// (little-endian, first word first). Aumasson and Bernstein, "SipHash: a fast short-input PRF".
    static func sipHash128(_ message: UnsafeRawBufferPointer, k0: UInt64, k1: UInt64) -> (UInt64, UInt64) {
        var state = (k0 ^ 0x736f_6d65_7073_6575, k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee, k0 ^ 0x6c79_6765_6e65_7261, k1 ^ 0x7465_6462_7974_6573)
        func round() {
            state.0 &+= state.1; state.1 = state.1.rotatedLeft(13) ^ state.0; state.0 = state.0.rotatedLeft(32)
            state.2 &+= state.3; state.3 = state.3.rotatedLeft(16) ^ state.2
            state.0 &+= state.3; state.3 = state.3.rotatedLeft(21) ^ state.0
            state.2 &+= state.1; state.1 = state.1.rotatedLeft(17) ^ state.2; state.2 = state.2.rotatedLeft(32)
        }
        func compress(_ word: UInt64) {
            state.3 ^= word
            round()
            round()
            state.0 ^= word
        }
        let whole = message.count / 8 * 8
        for offset in stride(from: 0, to: whole, by: 8) {
            compress(UInt64(littleEndian: message.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        }
        var last = UInt64(truncatingIfNeeded: message.count) << 56
        for index in whole..<message.count {
            last |= UInt64(message[index]) << (8 * UInt64(index - whole))
        }
        compress(last)
        state.2 ^= 0xee
        for _ in 0..<4 { round() }
        let first = state.0 ^ state.1 ^ state.2 ^ state.3
        state.1 ^= 0xdd
        for _ in 0..<4 { round() }
        return (first, state.0 ^ state.1 ^ state.2 ^ state.3)
    }

    private static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        self << count | self >> (64 - count)
    }
}
