import Foundation

/// The recording stand-in for the backend (`crocante-standin-backend`) on a loopback port it
/// picks itself; every request it receives is appended to ``recordFile`` as one JSON line.
final class StandInBackend {
    let process: ManagedProcess
    let port: UInt16
    let recordFile: URL

    /// - Parameters:
    ///   - arguments: how it answers, e.g. `["--status", "500"]` or `["--behavior", "blackhole"]`.
    ///   - port: 0 picks a free one; a given port brings a stopped stand-in back where it was.
    ///   - name: the process's log file name, and the `server` label of its recorded lines.
    ///   - launcher: a command that execs its arguments (`ip netns exec NAME`), keeping the pid.
    init(_ arguments: [String], directory: URL, port: UInt16 = 0, name: String = "backend", launcher: [String] = []) throws {
        recordFile = directory.appendingPathComponent("backend.jsonl")
        let command = [Harness.product("crocante-standin-backend").path, "--port", "\(port)", "--record", recordFile.path, "--name", name]
            + arguments
        let full = launcher + command
        let process = try ManagedProcess(
            URL(fileURLWithPath: full[0]), Array(full.dropFirst()), environment: [:], logDirectory: directory, name: name)
        // Its first stdout line, `listening on 127.0.0.1:PORT`, is the stand-in's documented interface.
        guard Harness.waitUntil({ process.stdout.contains("listening on") }),
            let port = process.stdout.split(separator: "\n").first?.split(separator: ":").last.flatMap({ UInt16($0) })
        else { throw HarnessError("stand-in backend did not start: \(process.stderr)") }
        self.process = process
        self.port = port
    }

    func stop() { process.stop() }
}
