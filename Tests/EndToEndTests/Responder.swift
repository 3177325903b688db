import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One run of the built responder: its process, the `NOTIFY_SOCKET` it reports readiness on, and
/// the totals it prints when it stops cleanly.
final class Responder {
    let process: ManagedProcess
    private let notifySocket: Int32
    /// Every datagram the responder has sent to its notify socket so far, in order.
    private(set) var notifications: [String] = []

    /// Starts the responder with its own notify socket in `directory`; ``waitUntilReady(timeout:)`` follows.
    init(
        _ executable: URL, _ arguments: [String], environment: [String: String], directory: URL, name: String,
        standardInput: FileHandle = FileHandle.nullDevice
    ) throws {
        let notifyPath = directory.appendingPathComponent("\(name).notify").path
        notifySocket = try Socket.boundDatagram(at: notifyPath)
        var environment = environment
        environment["NOTIFY_SOCKET"] = notifyPath
        do {
            process = try ManagedProcess(
                executable, arguments, environment: environment, logDirectory: directory, name: name, standardInput: standardInput)
        } catch {
            close(notifySocket)
            throw error
        }
    }

    /// Waits for `READY=1`, as systemd's `Type=notify` does; a responder that exits first fails at
    /// once, with its stderr.
    func waitUntilReady(timeout: Duration = .seconds(20)) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let message = nextNotification(timeout: .milliseconds(100)) {
                if message.split(separator: "\n").contains("READY=1") { return }
            } else if !process.isRunning {
                throw HarnessError("responder exited (\(process.process.terminationStatus)) before it was ready: \(stderr)")
            }
        }
        throw HarnessError("responder not ready within \(timeout): \(stderr)")
    }

    /// The next datagram on the notify socket, or nil when none comes within `timeout`.
    func nextNotification(timeout: Duration = .seconds(20)) -> String? {
        guard let bytes = Socket.receiveDatagram(notifySocket, timeout: timeout) else { return nil }
        let message = String(decoding: bytes, as: UTF8.self)
        notifications.append(message)
        return message
    }

    var pid: pid_t { process.pid }
    var isRunning: Bool { process.isRunning }
    var stdout: String { process.stdout }
    var stderr: String { process.stderr }

    func send(_ signal: Int32) { process.send(signal) }
    func waitForExit(timeout: Duration = .seconds(30)) -> Int32? { process.waitForExit(timeout: timeout) }
    func stop() { process.stop() }

    /// The totals from the status JSON printed as the last stdout line at a clean stop; nil before
    /// that (or after a crash).
    var totals: ResponderTotals? { ResponderTotals(finalStatusLine: stdout) }

    /// Every figure of the final status JSON by its key (`revocations_handed_over`, `spool_bytes`, …);
    /// nil before a clean stop.
    var finalStatus: [String: Int]? {
        stdout.split(separator: "\n").last.flatMap { try? JSONDecoder().decode([String: Int].self, from: Data($0.utf8)) }
    }

    deinit {
        process.stop()
        close(notifySocket)
    }
}
