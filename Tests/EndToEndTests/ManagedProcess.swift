import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running child whose stdout and stderr go to files, stopped by pid.
final class ManagedProcess {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    init(
        _ executable: URL, _ arguments: [String], environment: [String: String], logDirectory: URL, name: String,
        standardInput: FileHandle = FileHandle.nullDevice
    ) throws {
        stdoutURL = logDirectory.appendingPathComponent("\(name).stdout")
        stderrURL = logDirectory.appendingPathComponent("\(name).stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = standardInput
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    func send(_ signal: Int32) { kill(pid, signal) }

    /// The exit status once the process has exited by itself within `timeout`, else nil.
    func waitForExit(timeout: Duration = .seconds(30)) -> Int32? {
        guard Harness.waitUntil(timeout: timeout, { !process.isRunning }) else { return nil }
        return process.terminationStatus
    }

    /// Stops the process if it still runs: SIGTERM, then SIGKILL.
    func stop() {
        guard process.isRunning else { return }
        send(SIGTERM)
        if waitForExit(timeout: .seconds(15)) == nil { send(SIGKILL); _ = waitForExit(timeout: .seconds(5)) }
    }

    deinit { stop() }
}
