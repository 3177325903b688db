import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension TestStack {
    /// Retries that fit in a test: 50 ms doubling to half a second.
    static let fastRetries = ["CROCANTE_RETRY_BASE_MS": "50", "CROCANTE_RETRY_MAX_MS": "500"]

    /// A fresh spool directory in the stack's directory, mode 0700 as the responder requires.
    func makeSpoolDirectory(_ name: String = "spool") throws -> String {
        let path = directory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return path
    }

    /// The spool's segment files (finished and being written), oldest name first.
    static func segmentFiles(in spool: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
        return names.filter { $0.contains(".crsp") }.sorted().map { "\(spool)/\($0)" }
    }

    /// The values of the ``SecretLedger`` (every token, cookie and secret used so far) found in
    /// clear in any file of `spool`; each file is named with what it holds, never the value.
    static func secretsInClear(inSpool spool: String) -> [String] {
        // Values by their first 8 bytes, so each file is read once, one lookup per offset.
        var byPrefix: [UInt64: [[UInt8]]] = [:]
        for value in SecretLedger.all where value.utf8.count >= 8 {
            let bytes = Array(value.utf8)
            byPrefix[prefix(bytes, at: 0), default: []].append(bytes)
        }
        var found: [String] = []
        for path in (try? FileManager.default.contentsOfDirectory(atPath: spool))?.map({ "\(spool)/\($0)" }) ?? [] {
            guard let data = FileManager.default.contents(atPath: path), data.count >= 8 else { continue }
            let file = [UInt8](data)
            var hits = Set<[UInt8]>()
            for offset in 0...(file.count - 8) {
                guard let candidates = byPrefix[prefix(file, at: offset)] else { continue }
                for value in candidates where offset + value.count <= file.count && file[offset..<(offset + value.count)].elementsEqual(value) {
                    hits.insert(value)
                }
            }
            if !hits.isEmpty { found.append("\((path as NSString).lastPathComponent): \(hits.count) value(s)") }
        }
        return found
    }

    private static func prefix(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }

    /// Fails the test if any spool file holds a recorded token, cookie or secret in clear; checks
    /// the files it found (0 proves nothing, so that is said too).
    func expectNoSecretsInClear(inSpool spool: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let leaks = Self.secretsInClear(inSpool: spool)
        #expect(leaks.isEmpty, "spool files hold secrets in clear: \(leaks)", sourceLocation: sourceLocation)
    }

    /// Every spool directory in the stack's directory (files whose names contain `.crsp`), checked at the end of each test.
    func spoolDirectoriesInStack() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        var directories = Set<String>()
        while let relative = walker.nextObject() as? String {
            guard relative.contains(".crsp") else { continue }
            directories.insert(directory.appendingPathComponent((relative as NSString).deletingLastPathComponent).path)
        }
        return directories.sorted()
    }
}
