import Foundation
import Logging
import LogoutCore
import Revocation
import Synchronization
import Testing

@testable import RevocationSpool

#if canImport(Glibc)
import Glibc
#endif

/// A fresh 0700 directory under /tmp for one test, removed when the test is done with it.
final class SpoolDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/crocante-spool-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SpoolTestError("mkdtemp failed") }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Segment files (complete names only), sorted.
    var segments: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { $0.hasSuffix(Spool.segmentSuffix) }.sorted().map { path + "/" + $0 }
    }

    /// Every file in the directory, whatever its name.
    var allFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
    }

    func settings(
        syncInterval: Duration = .milliseconds(5), maxBytes: Int = SpoolSettings.defaultMaxBytes,
        segmentBytes: Int = SpoolSettings.defaultSegmentBytes
    ) -> SpoolSettings {
        SpoolSettings(directory: path, syncInterval: syncInterval, maxBytes: maxBytes, segmentBytes: segmentBytes)
    }
}

struct SpoolTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Fixtures {
    static let secret = try! SessionSecret("spool-test-secret-0123456789-abcdefgh", setting: "SESSION_SECRET")
    static let oldSecret = try! SessionSecret("spool-old-secret-0123456789-abcdefghi", setting: "SESSION_SECRET_PREVIOUS")
    static let probeSecret = try! SessionSecret("spool-probe-secret-0123456789-abcdefgh", setting: "SESSION_SECRET")
    static let logger = Logger(label: "spool-test") { _ in SwiftLogNoOpLogHandler() }

    static func token(_ text: String) -> AccessToken { AccessToken(validating: Array(text.utf8))! }

    /// Distinct, recognisable tokens (a JWT-like shape, so the clear-text check is meaningful).
    static func tokens(_ count: Int, tag: String = "t") -> [AccessToken] {
        (0..<count).map { token("eyJhbGciOiJIUzI1NiJ9.\(tag)-\($0)-secretpayload.sig\($0)") }
    }

    static func spool(_ directory: SpoolDirectory, secrets: [SessionSecret] = [secret], settings: SpoolSettings? = nil) throws -> Spool {
        try Spool(settings: settings ?? directory.settings(), secrets: secrets, logger: logger)
    }

    static func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Where the products are: beside the test bundle.
    static let productsDirectory: URL = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent()
    }()

    /// Runs a command to completion: exit status (or 128 + signal) and stdout.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, signalled: Bool, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, String(decoding: data, as: UTF8.self))
    }

    /// True when this test may make a mount namespace (root with CAP_SYS_ADMIN, `unshare` present).
    static let canUnshareMounts: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
        return (try? run("/usr/bin/unshare", ["-m", "true"]).status) == 0
    }()
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs anywhere in these bytes.
    func contains(bytes needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        for start in 0...(count - needle.count) where self[start] == needle[0] {
            if Array(self[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }
}

/// Keeps every log line in memory, like swift-log's `InMemoryLogHandler`.
struct RecordingLogHandler: LogHandler {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    let recorded: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorded.lines.withLock { $0.append("\(event.level) \(event.message)") }
    }
}
