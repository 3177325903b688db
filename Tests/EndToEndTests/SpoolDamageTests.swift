import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A damaged spool (a torn tail, a flipped byte) or one sealed under a secret the successor no
/// longer has: the bad records are counted, never fatal, and the rest is delivered.
@Suite(.serialized)
struct SpoolDamageTests {
    /// The frames of a segment: (offset, whole length), after its 8-byte header
    /// (`length u32 LE | kind u8 | body | crc32c u32 LE`, as SpoolFormat documents).
    static func frames(_ bytes: [UInt8]) -> [(offset: Int, length: Int)] {
        var frames: [(Int, Int)] = []
        var offset = 8
        while offset + 4 <= bytes.count {
            let body = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            let length = 4 + 1 + body + 4
            guard offset + length <= bytes.count else { break }
            frames.append((offset, length))
            offset += length
        }
        return frames
    }

    /// SIGKILL with the backend down, then one byte flipped in a middle record's body and the
    /// last record cut in half: the successor counts both as corrupt and delivers the others.
    @Test func aTornTailAndAFlippedByteAreCountedAndTheRestDelivered() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(20, "damaged")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            stack.stopResponder(SIGKILL)
            let segment = try #require(TestStack.segmentFiles(in: spool).max { fileSize($0) < fileSize($1) })
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
            let frames = Self.frames(bytes)
            try #require(frames.count == tokens.count, "\(frames.count) frames for \(tokens.count) logouts")
            let flipped = frames[frames.count / 2]
            bytes[flipped.offset + 4 + 1 + 20] ^= 0x40
            let last = frames[frames.count - 1]
            bytes.removeLast(last.length / 2)
            try Data(bytes).write(to: URL(fileURLWithPath: segment))
            try stack.startBackend(name: "up")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            _ = stack.waitForDelivery(of: tokens, timeout: .seconds(8))
            let delivered = stack.deliveredTokens().intersection(tokens)
            let status = try stack.status()
            #expect(stack.stopResponder().status == 0)
            print("damage/torn+flipped: delivered \(delivered.count)/\(tokens.count); corrupt \(status["spool_corrupt_records"] ?? -1)")
            #expect(status["spool_corrupt_records"] == 2, "\(status)")
            #expect(delivered.count == tokens.count - 2)
            #expect(stack.responder.stderr.contains("2 corrupt and 0 unreadable records skipped"), "the damage was not logged")
        }
    }

    /// Records sealed under the old secret, read by a successor that has only a new one: counted
    /// unreadable, not fatal. A successor given the old one as SESSION_SECRET_PREVIOUS delivers them
    /// (from a copy of the same spool, whatever the first successor did with the records).
    @Test func aRotatedSecretCountsUnreadableRecordsAndThePreviousSecretOpensThem() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            let copy = try stack.makeSpoolDirectory("spool-copy")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Seal.tokens(10, "rotated")
            for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
            stack.stopResponder(SIGKILL)
            for file in TestStack.segmentFiles(in: spool) {
                try FileManager.default.copyItem(atPath: file, toPath: "\(copy)/\((file as NSString).lastPathComponent)")
            }
            try stack.startBackend(name: "up")
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool, "SESSION_SECRET": Seal.foreignSecret])
            #expect(Harness.waitUntil(timeout: .seconds(8)) { ((try? stack.status())?["spool_unreadable_records"] ?? 0) >= tokens.count })
            let wrong = try stack.status()
            #expect(stack.responder.isRunning)
            #expect(stack.stopResponder().status == 0)
            #expect(stack.deliveredTokens().isDisjoint(with: tokens))
            try stack.startResponder([
                "CROCANTE_SPOOL_DIR": copy, "SESSION_SECRET": Seal.foreignSecret, "SESSION_SECRET_PREVIOUS": Harness.secret,
            ])
            let missing = stack.waitForDelivery(of: tokens)
            #expect(stack.stopResponder().status == 0)
            print("damage/rotation: unreadable \(wrong["spool_unreadable_records"] ?? -1) with the new secret only; delivered with the previous \(tokens.count - missing.count)/\(tokens.count)")
            #expect(wrong["spool_unreadable_records"] == tokens.count)
            #expect(missing.isEmpty)
        }
    }
}

private func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}
