import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Paths, the test secrets, polling and short commands for the tests that run the built binaries.
enum Harness {
    /// The package root, found from this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Where SwiftPM put the products: beside the test bundle, as swift-argument-parser's helpers find them.
    static let productsDirectory: URL = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent()
    }()

    static func product(_ name: String) -> URL { productsDirectory.appendingPathComponent(name) }

    /// A fresh directory under /tmp (short, so unix socket paths in it fit), removed by its owner.
    static func temporaryDirectory() throws -> URL {
        var template = Array("/tmp/crocante-e2e-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        let path = String(cString: made)
        chmod(path, 0o755)
        return URL(fileURLWithPath: path)
    }

    /// Polls `condition` until it holds or `timeout` passes; the bound only guards against hangs.
    static func waitUntil(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// The test-only session secret, and a previous one for rotation.
    static let secret = "e2e-secret-0123456789abcdef0123456789"
    static let previousSecret = "e2e-previous-secret-0123456789abcdef"

    /// Runs a short command to completion.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil)
        throws -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
