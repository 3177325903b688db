import Foundation
import Logging
import LogoutCore
import Revocation
import Testing

@testable import RevocationSpool

#if canImport(Glibc)
import Glibc
#endif

/// The spool on real files: one fresh directory per test; two `Spool`s in one process stand for
/// two processes (flock locks belong to open file descriptions, so they conflict the same way).
@Suite struct SpoolTests {
    @Test func appendCompleteHandOverAndAdoptAcrossTwoSpools() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(5)
        let first = try Fixtures.spool(directory)
        var receipts: [JournalReceipt] = []
        for (index, token) in tokens.enumerated() {
            receipts.append(try #require(first.append(token: token, loggedOutAt: 1_000 + Int64(index))))
        }
        first.complete(receipts[1])
        first.complete(receipts[3])
        first.complete(receipts[3])  // a second completion changes nothing
        #expect(first.statistics.pendingRecords == 3)
        #expect(first.handOver() == 3)
        #expect(first.statistics.handedOver == 3)
        #expect(first.append(token: tokens[0], loggedOutAt: 0) == nil)  // closed after hand-over

        let second = try Fixtures.spool(directory)
        let adopted = second.adoptOrphans()
        #expect(adopted.map(\.token) == [tokens[0], tokens[2], tokens[4]])
        #expect(adopted.map(\.loggedOutAt) == [1_000, 1_002, 1_004])
        #expect(second.statistics.adopted == 3)
        #expect(second.statistics.pendingRecords == 3)
        #expect(second.adoptOrphans().isEmpty)  // each record is returned once
        #expect(directory.segments.count == 1)  // the orphan is gone, only ours is left

        // The adopted records are ours now: completed here, and nothing is left for a third.
        for revocation in adopted { second.complete(revocation.receipt) }
        #expect(second.handOver() == 0)
        let third = try Fixtures.spool(directory)
        #expect(third.adoptOrphans().isEmpty)
    }

    /// What the queue parks is read back from the file: pending records only, adopted ones
    /// included, and a record damaged on disk since it was written reads back as nil.
    @Test func pendingRecordsAreReadBackFromTheirSegment() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(4)
        let first = try Fixtures.spool(directory)
        var receipts: [JournalReceipt] = []
        for token in tokens { receipts.append(try #require(first.append(token: token, loggedOutAt: 7))) }
        #expect(receipts.map { first.readBack($0) } == tokens)
        first.complete(receipts[1])
        #expect(first.readBack(receipts[1]) == nil)  // completed: nothing to read back
        #expect(first.readBack(JournalReceipt(segment: 99, record: 0)) == nil)

        _ = first.handOver()
        let second = try Fixtures.spool(directory)
        let adopted = second.adoptOrphans()
        #expect(adopted.map { second.readBack($0.receipt) } == [tokens[0], tokens[2], tokens[3]])

        // One byte flipped inside the last record's ciphertext: the checksum catches it.
        let segment = try #require(directory.segments.last)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: segment))
        let end = try handle.seekToEnd()
        try handle.seek(toOffset: end - 10)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: end - 10)
        try handle.write(contentsOf: [byte ^ 0xFF])
        try handle.close()
        #expect(second.readBack(adopted[2].receipt) == nil)
        #expect(second.readBack(adopted[0].receipt) == tokens[0])
    }

    @Test func aLiveSpoolsSegmentIsNotAdopted() throws {
        let directory = try SpoolDirectory()
        let first = try Fixtures.spool(directory)
        _ = try #require(first.append(token: Fixtures.token("live-token"), loggedOutAt: 1))
        let second = try Fixtures.spool(directory)
        #expect(second.adoptOrphans().isEmpty)
        #expect(second.statistics.bytes >= first.statistics.bytes)  // counts the live one's bytes too
        _ = first.handOver()
        #expect(second.adoptOrphans().map(\.token) == [Fixtures.token("live-token")])
    }

    @Test func aKilledProcessLosesNothingItAppended() throws {
        let directory = try SpoolDirectory()
        let probe = Fixtures.productsDirectory.appendingPathComponent("SpoolCrashProbe").path
        let result = try Fixtures.run(probe, ["crash", directory.path, "300"])
        #expect(result.signalled && result.status == SIGKILL)
        #expect(result.stdout.contains("appended=300"))
        let spool = try Fixtures.spool(directory, secrets: [Fixtures.probeSecret])
        let adopted = spool.adoptOrphans()
        #expect(Set(adopted.map(\.token.value)) == Set((0..<300).map { "probe-token-\($0)" }))
        #expect(adopted.count == 300)
        #expect(spool.statistics.corrupt == 0)
    }

    /// A segment handed over with five records, its bytes, and the size of one record.
    private func handedOverSegment(_ directory: SpoolDirectory, tokens: [AccessToken]) throws -> (path: String, recordSize: Int) {
        let spool = try Fixtures.spool(directory)
        for token in tokens { _ = try #require(spool.append(token: token, loggedOutAt: 7)) }
        _ = spool.handOver()
        let path = try #require(directory.segments.first)
        return (path, SpoolFormat.tokenRecordOverhead + tokens[0].value.utf8.count)
    }

    /// How a segment of five equal-sized records is damaged, and what adoption then finds.
    struct Damage: Sendable, CustomTestStringConvertible {
        let name: String
        let damage: @Sendable (inout [UInt8], _ recordSize: Int) -> Void
        let adopted: [Int]
        let corrupt: Int
        var testDescription: String { name }
    }

    static let damages: [Damage] = [
        Damage(name: "torn last record", damage: { bytes, _ in bytes.removeLast(7) }, adopted: [0, 1, 2, 3], corrupt: 1),
        Damage(name: "torn inside the length", damage: { bytes, size in bytes.removeLast(size - 2) }, adopted: [0, 1, 2, 3], corrupt: 1),
        Damage(
            name: "flipped byte in the third record",
            damage: { bytes, size in bytes[SpoolFormat.headerSize + 2 * size + 30] ^= 0x40 }, adopted: [0, 1, 3, 4], corrupt: 1
        ),
        Damage(
            name: "flipped checksum of the first record",
            damage: { bytes, size in bytes[SpoolFormat.headerSize + size - 1] ^= 0x01 }, adopted: [1, 2, 3, 4], corrupt: 1
        ),
        Damage(
            name: "implausible length in the second record",
            damage: { bytes, size in
                for offset in 0..<4 { bytes[SpoolFormat.headerSize + size + offset] = 0xFF }
            }, adopted: [0], corrupt: 1
        ),
        Damage(name: "no damage", damage: { _, _ in }, adopted: [0, 1, 2, 3, 4], corrupt: 0),
    ]

    @Test(arguments: damages) func damagedSegmentsAreRecoveredAndCounted(_ damage: Damage) throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(5)
        let (path, recordSize) = try handedOverSegment(directory, tokens: tokens)
        var bytes = Fixtures.bytes(path)
        damage.damage(&bytes, recordSize)
        try Fixtures.write(bytes, to: path)

        let spool = try Fixtures.spool(directory)
        let adopted = spool.adoptOrphans()
        #expect(adopted.map(\.token) == damage.adopted.map { tokens[$0] })
        #expect(spool.statistics.corrupt == damage.corrupt)
        #expect(spool.statistics.unreadable == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aSegmentWithoutAValidHeaderIsSetAsideNotFatal() throws {
        let directory = try SpoolDirectory()
        let path = directory.path + "/segment-1-2-3.crsp"
        try Fixtures.write(Array("not a spool segment at all".utf8), to: path)
        let spool = try Fixtures.spool(directory)
        #expect(spool.adoptOrphans().isEmpty)
        #expect(spool.statistics.corrupt == 1)
        #expect(FileManager.default.fileExists(atPath: path + Spool.corruptSuffix))
        #expect(spool.adoptOrphans().isEmpty)
        #expect(spool.statistics.corrupt == 1)  // counted once
    }

    /// Records sealed under the old secret, opened after a rotation.
    struct Rotation: Sendable {
        let secrets: [String]
        let adopted: Int
        let unreadable: Int
    }

    @Test(arguments: [
        Rotation(secrets: ["new"], adopted: 0, unreadable: 3),
        Rotation(secrets: ["new", "old"], adopted: 3, unreadable: 0),
        Rotation(secrets: ["old"], adopted: 3, unreadable: 0),
    ])
    func recordsSealedWithARotatedSecret(_ rotation: Rotation) throws {
        let directory = try SpoolDirectory()
        let old = try Fixtures.spool(directory, secrets: [Fixtures.oldSecret])
        let tokens = Fixtures.tokens(3)
        for token in tokens { _ = try #require(old.append(token: token, loggedOutAt: 5)) }
        _ = old.handOver()

        let secrets = rotation.secrets.map { $0 == "old" ? Fixtures.oldSecret : Fixtures.secret }
        let spool = try Fixtures.spool(directory, secrets: secrets)
        let adopted = spool.adoptOrphans()
        #expect(adopted.count == rotation.adopted)
        #expect(spool.statistics.unreadable == rotation.unreadable)
        #expect(spool.statistics.corrupt == 0)
        if rotation.adopted > 0 {
            #expect(adopted.map(\.token) == tokens)
            // Re-sealed under the current secret: a spool with only that secret opens them.
            _ = spool.handOver()
            let next = try Fixtures.spool(directory, secrets: [secrets[0]])
            #expect(next.adoptOrphans().count == rotation.adopted)
        }
    }

    @Test func noTokenLiesInClearInAnySpoolFile() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(40, tag: "clear")
        let first = try Fixtures.spool(directory, settings: directory.settings(segmentBytes: 1024))
        for (index, token) in tokens.enumerated() {
            let receipt = try #require(first.append(token: token, loggedOutAt: 9))
            if index % 3 == 0 { first.complete(receipt) }
        }
        _ = first.handOver()
        let second = try Fixtures.spool(directory)
        #expect(!second.adoptOrphans().isEmpty)
        let third = try Fixtures.spool(directory)  // its segment and the second's, both on disk
        let files = directory.allFiles
        #expect(files.count >= 2)
        for file in files {
            let bytes = Fixtures.bytes(file)
            for token in tokens {
                #expect(!bytes.contains(bytes: Array(token.value.utf8)), "a token in clear in \(file)")
                #expect(!bytes.contains(bytes: Array("secretpayload".utf8)))
            }
        }
        _ = third.handOver()
    }

    /// Workers seal their records before taking the spool's lock, so numbers can reach a segment
    /// out of order; they must still never repeat, within or across segments, nor may a nonce
    /// under the one key (GCM's only requirement), and a successor must find every record.
    @Test func concurrentAppendsNeverRepeatASequenceOrANonceAndAllAreAdopted() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(400, tag: "concurrent")
        let spool = try Fixtures.spool(directory, settings: directory.settings(segmentBytes: 2048))
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for index in stride(from: worker, to: tokens.count, by: 4) {
                _ = spool.append(token: tokens[index], loggedOutAt: Int64(index))
            }
        }
        #expect(spool.statistics.writeErrors == 0)
        _ = spool.handOver()
        var sequences = Set<UInt64>()
        var nonces = Set<[UInt8]>()
        var records = 0
        let segments = directory.allFiles.filter { $0.hasSuffix(Spool.segmentSuffix) }
        #expect(segments.count > 2, "records spread over several segments")
        for segment in segments {
            for case .token(let sequence, let sealed) in SpoolFormat.scan(Fixtures.bytes(segment)).frames {
                records += 1
                sequences.insert(sequence)
                nonces.insert(Array(sealed.prefix(12)))
            }
        }
        #expect(records == tokens.count)
        #expect(sequences.count == tokens.count)
        #expect(nonces.count == tokens.count)
        let successor = try Fixtures.spool(directory)
        let adopted = successor.adoptOrphans()
        #expect(Set(adopted.map(\.token.value)) == Set(tokens.map(\.value)))
        #expect(Set(adopted.map(\.loggedOutAt)) == Set((0..<Int64(tokens.count)).map { $0 }))
        _ = successor.handOver()
    }

    @Test func theSizeLimitRefusesNewRecordsAndCountsThem() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(4)
        let recordSize = SpoolFormat.tokenRecordOverhead + tokens[0].value.utf8.count
        let settings = directory.settings(maxBytes: SpoolFormat.headerSize + 3 * recordSize)
        let spool = try Fixtures.spool(directory, settings: settings)
        for token in tokens.prefix(3) { #expect(spool.append(token: token, loggedOutAt: 1) != nil) }
        #expect(spool.append(token: tokens[3], loggedOutAt: 1) == nil)
        #expect(spool.append(token: tokens[3], loggedOutAt: 1) == nil)
        let statistics = spool.statistics
        #expect(statistics.full == 2)
        #expect(statistics.writeErrors == 2)
        #expect(statistics.pendingRecords == 3)
        #expect(statistics.bytes == SpoolFormat.headerSize + 3 * recordSize)
    }

    @Test func refusalsAreLoggedAtMostOnceASecondWithoutTheToken() throws {
        let directory = try SpoolDirectory()
        let lines = RecordingLogHandler.Lines()
        let logger = Logger(label: "spool-test") { _ in RecordingLogHandler(recorded: lines) }
        let tokens = Fixtures.tokens(20, tag: "logged")
        let spool = try Spool(settings: directory.settings(maxBytes: 50), secrets: [Fixtures.secret], logger: logger)
        for token in tokens { #expect(spool.append(token: token, loggedOutAt: 1) == nil) }
        #expect(spool.statistics.full == 20)
        #expect(lines.all.count == 1)
        for line in lines.all {
            #expect(line.contains("spool full"))
            for token in tokens { #expect(!line.contains(token.value)) }
        }
    }

    @Test func orphansAreAdoptedEvenWhenTheyFillTheSpool() throws {
        let directory = try SpoolDirectory()
        let tokens = Fixtures.tokens(10)
        let recordSize = SpoolFormat.tokenRecordOverhead + tokens[0].value.utf8.count
        let settings = directory.settings(maxBytes: SpoolFormat.headerSize + 10 * recordSize)
        let first = try Fixtures.spool(directory, settings: settings)
        for token in tokens { _ = try #require(first.append(token: token, loggedOutAt: 1)) }
        _ = first.handOver()
        // The orphan alone fills the limit; moving it must not need room for a second copy.
        let second = try Fixtures.spool(directory, settings: settings)
        #expect(second.adoptOrphans().map(\.token) == tokens)
        #expect(directory.segments.count == 1)
    }

    @Test func finishedSegmentsAreDeletedAndALargeFinishedActiveOneRolls() throws {
        let directory = try SpoolDirectory()
        let spool = try Fixtures.spool(directory, settings: directory.settings(segmentBytes: 400))
        var receipts: [JournalReceipt] = []
        for token in Fixtures.tokens(30) { receipts.append(try #require(spool.append(token: token, loggedOutAt: 1))) }
        #expect(directory.segments.count > 3)  // rotated at ~400 bytes
        // Keep one record of the first segment pending: that segment stays, the others go.
        for receipt in receipts.dropFirst() { spool.complete(receipt) }
        spool.syncNow()
        #expect(directory.segments.count == 2)  // the first one and a fresh active one
        spool.complete(receipts[0])
        spool.syncNow()
        #expect(directory.segments.count == 1)
        #expect(spool.statistics.pendingRecords == 0)
        #expect(spool.statistics.bytes == SpoolFormat.headerSize)
        #expect(spool.handOver() == 0)
        #expect(directory.segments.isEmpty)  // nothing pending: nothing left behind
    }

    @Test func syncsAreGroupedOffTheRequestPath() async throws {
        let directory = try SpoolDirectory()
        let spool = try Fixtures.spool(directory, settings: directory.settings(syncInterval: .milliseconds(20)))
        for token in Fixtures.tokens(50) { _ = spool.append(token: token, loggedOutAt: 1) }
        var waited = 0
        while spool.statistics.syncs == 0 && waited < 500 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(spool.statistics.syncs >= 1)
        #expect(spool.statistics.syncs < 50)  // grouped, not one per record
        _ = spool.handOver()
    }

    @Test func segmentFilesAreMode0600() throws {
        let directory = try SpoolDirectory()
        let spool = try Fixtures.spool(directory)
        _ = spool.append(token: Fixtures.token("mode-token"), loggedOutAt: 1)
        let segment = try #require(directory.segments.first)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: segment)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        _ = spool.handOver()
    }

    @Test(arguments: ["missing", "file", "0755", "0707", "0701"])
    func unusableDirectoriesAreRefused(_ kind: String) throws {
        let directory = try SpoolDirectory()
        var path = directory.path + "/spool"
        switch kind {
        case "missing": break
        case "file": try Fixtures.write([1, 2, 3], to: path)
        default:
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            chmod(path, mode_t(kind, radix: 8)!)
        }
        if kind == "missing" { path += "/nope" }
        #expect(throws: CrocanteError.self) {
            _ = try Spool(settings: SpoolSettings(directory: path), secrets: [Fixtures.secret], logger: Fixtures.logger)
        }
        do {
            _ = try Spool(settings: SpoolSettings(directory: path), secrets: [Fixtures.secret], logger: Fixtures.logger)
        } catch {
            #expect(error.description.hasPrefix("CROCANTE_SPOOL_DIR is invalid"))
        }
    }

    @Test(.enabled(if: Fixtures.canUnshareMounts, "needs root and mount namespaces"))
    func aFullFilesystemFailsAppendsWithoutCrashing() throws {
        let directory = try SpoolDirectory()
        let probe = Fixtures.productsDirectory.appendingPathComponent("SpoolCrashProbe").path
        // A private mount namespace with a 64 KiB tmpfs: ENOSPC for real, the host untouched.
        let script = "mount -t tmpfs -o size=64k,mode=0700 spooltest \"$1\" && exec \"$2\" fill \"$1\""
        let result = try Fixtures.run("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", directory.path, probe])
        #expect(result.status == 0)
        let fields = Dictionary(uniqueKeysWithValues: result.stdout.split(whereSeparator: \.isWhitespace).compactMap { field -> (String, Int)? in
            let parts = field.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { return nil }
            return (String(parts[0]), value)
        })
        #expect((fields["appended"] ?? 0) > 100)
        #expect((fields["appended"] ?? 100_000) < 100_000)
        #expect(fields["writeErrors"] == 1)
        #expect(fields["full"] == 0)
    }

    @Test(.enabled(if: Fixtures.canUnshareMounts, "needs root and mount namespaces"))
    func aReadOnlyDirectoryIsRefusedAtStart() throws {
        let directory = try SpoolDirectory()
        let probe = Fixtures.productsDirectory.appendingPathComponent("SpoolCrashProbe").path
        let script = "mount -t tmpfs -o size=64k,mode=0700 spooltest \"$1\" && mount -o remount,ro \"$1\" && exec \"$2\" fill \"$1\""
        let result = try Fixtures.run("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", directory.path, probe])
        #expect(result.status == 78)
        #expect(result.stdout.contains("refused: CROCANTE_SPOOL_DIR is invalid"))
        #expect(result.stdout.contains("Read-only file system"))
    }
}
