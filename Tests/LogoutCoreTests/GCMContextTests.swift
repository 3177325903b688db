import Crypto
import Dispatch
import Synchronization
import Testing

@testable import LogoutCore

/// libcrypto's contexts, keyed once, must seal and open exactly as swift-crypto's AES-GCM does,
/// message after message on one context, whatever failed before.
@Suite struct GCMContextTests {
    static let key = SymmetricKey(data: [UInt8](0..<32))
    static let otherKey = SymmetricKey(data: [UInt8](32..<64))

    /// Deterministic inputs: every length from empty to past four blocks, both nonce sizes.
    static func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 3) }
    }

    static let lengths = Array(0...70) + [255, 4096]

    @Test(arguments: [12, 16])
    func opensWhatSwiftCryptoSeals(nonceLength: Int) throws {
        let context = GCMContext(key: Self.key, nonceLength: nonceLength, direction: .decrypt)
        for length in Self.lengths {
            let nonce = Self.bytes(nonceLength, seed: length)
            let plaintext = Self.bytes(length, seed: length + 1)
            let associatedData = Self.bytes(length % 3 == 0 ? 0 : 8, seed: length + 2)
            let box = try AES.GCM.seal(plaintext, using: Self.key, nonce: AES.GCM.Nonce(data: nonce), authenticating: associatedData)
            let ciphertext = Array(box.ciphertext)
            var tag = Array(box.tag)
            #expect(Self.open(context, nonce, ciphertext, tag, associatedData) == plaintext, "length \(length)")
            // Any flipped bit fails, and the next good message on the same context still opens.
            tag[length % 16] ^= 0x01
            #expect(Self.open(context, nonce, ciphertext, tag, associatedData) == nil)
            tag[length % 16] ^= 0x01
            if !ciphertext.isEmpty {
                var flipped = ciphertext
                flipped[length % ciphertext.count] ^= 0x80
                #expect(Self.open(context, nonce, flipped, tag, associatedData) == nil)
            }
            #expect(Self.open(context, nonce, ciphertext, tag, associatedData + [0]) == nil)
            #expect(Self.open(context, nonce, ciphertext, tag, associatedData) == plaintext)
        }
        let wrongKey = GCMContext(key: Self.otherKey, nonceLength: nonceLength, direction: .decrypt)
        let box = try AES.GCM.seal([1, 2, 3], using: Self.key, nonce: AES.GCM.Nonce(data: Self.bytes(nonceLength, seed: 9)))
        #expect(Self.open(wrongKey, Self.bytes(nonceLength, seed: 9), Array(box.ciphertext), Array(box.tag), []) == nil)
    }

    @Test(arguments: [12, 16])
    func sealsWhatSwiftCryptoSeals(nonceLength: Int) throws {
        let context = GCMContext(key: Self.key, nonceLength: nonceLength, direction: .encrypt)
        for length in Self.lengths {
            let nonce = Self.bytes(nonceLength, seed: length)
            let plaintext = Self.bytes(length, seed: length + 1)
            let associatedData = Self.bytes(length % 3 == 0 ? 0 : 8, seed: length + 2)
            let box = try AES.GCM.seal(plaintext, using: Self.key, nonce: AES.GCM.Nonce(data: nonce), authenticating: associatedData)
            var ciphertext = [UInt8](repeating: 0, count: length)
            var tag = [UInt8](repeating: 0, count: 16)
            let sealed = nonce.withUnsafeBytes { nonce in
                plaintext.withUnsafeBytes { plaintext in
                    associatedData.withUnsafeBytes { associatedData in
                        ciphertext.withUnsafeMutableBytes { ciphertext in
                            tag.withUnsafeMutableBytes { tag in
                                context.seal(nonce: nonce, plaintext: plaintext, authenticating: associatedData, into: ciphertext, tag: tag)
                            }
                        }
                    }
                }
            }
            #expect(sealed)
            #expect(ciphertext == Array(box.ciphertext), "length \(length)")
            #expect(tag == Array(box.tag), "length \(length)")
        }
    }

    /// Threads at once each get a set of their own: every open of many threads comes out right.
    @Test func keyringLendsEachSetToOneThreadAtATime() throws {
        let keyring = GCMKeyring(keys: [Self.otherKey, Self.key], nonceLength: 16, direction: .decrypt)
        let messages = try (0..<64).map { index in
            let nonce = Self.bytes(16, seed: index)
            let plaintext = Self.bytes(index + 1, seed: index)
            let box = try AES.GCM.seal(plaintext, using: Self.key, nonce: AES.GCM.Nonce(data: nonce))
            return (nonce, Array(box.ciphertext), Array(box.tag), plaintext)
        }
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8 * messages.count) { iteration in
            let (nonce, ciphertext, tag, plaintext) = messages[iteration % messages.count]
            // The first key never opens these, the second always does.
            let opened = keyring.withContexts { contexts in
                contexts.compactMap { Self.open($0, nonce, ciphertext, tag, []) }
            }
            if opened != [plaintext] { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    static func open(_ context: GCMContext, _ nonce: [UInt8], _ ciphertext: [UInt8], _ tag: [UInt8], _ associatedData: [UInt8]) -> [UInt8]? {
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        let opened = nonce.withUnsafeBytes { nonce in
            ciphertext.withUnsafeBytes { ciphertext in
                tag.withUnsafeBytes { tag in
                    associatedData.withUnsafeBytes { associatedData in
                        plaintext.withUnsafeMutableBytes { plaintext in
                            context.open(nonce: nonce, ciphertext: ciphertext, tag: tag, authenticating: associatedData, into: plaintext)
                        }
                    }
                }
            }
        }
        return opened ? plaintext : nil
    }
}
