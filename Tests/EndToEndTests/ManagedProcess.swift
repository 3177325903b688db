import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running child whose stdout and stderr go to files, stopped by pid.
final class ManagedProcess {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    /// - Parameter clearsSignalMask: spawn it with no signal blocked. A child inherits the
    ///   spawning thread's mask, and the test runner's threads block SIGTERM: nginx and the
    ///   responder set their own masks, lighttpd and Apache's children never would, so they
    ///   would ignore the SIGTERM that stops them.
    init(
        _ executable: URL, _ arguments: [String], environment: [String: String], logDirectory: URL, name: String,
        standardInput: FileHandle = FileHandle.nullDevice, clearsSignalMask: Bool = false
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
        guard clearsSignalMask else {
            try process.run()
            return
        }
        // Foundation spawns on the calling thread: unblock everything around the spawn only.
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
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
