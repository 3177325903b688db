import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Debian's headless `chromium`, driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands on its fd 3, replies and events on its fd 4, each
/// message JSON ended by a NUL byte).
///
/// A pipe rather than `--remote-debugging-port`: no port any local user could connect to and
/// drive the browser through, no port to discover, and no WebSocket client to depend on.
/// Each instance has its own profile in a temporary directory and is stopped by its pid.
final class Chromium {
    /// The browser, when installed (`scripts/install-deps` installs Debian's `chromium`).
    // The binary itself, not /usr/bin/chromium: that wrapper sources /etc/chromium.d (API keys,
    // extension flags) and would sit between the test and the pid it stops. `CROCANTE_CHROMIUM`
    // names another build.
    static let executable: String? = [ProcessInfo.processInfo.environment["CROCANTE_CHROMIUM"] ?? "/usr/lib/chromium/chromium"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static var isInstalled: Bool { executable != nil }
    static let missingReason: Comment = "no chromium at /usr/lib/chromium/chromium or $CROCANTE_CHROMIUM (Debian: apt-get install chromium, as scripts/install-deps does): the real-browser tests are skipped"

    let process = Process()
    let directory: URL
    private let commands: FileHandle
    private let replies: FileHandle
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// Protocol events received so far (`method`, `params`, `sessionId`), in order.
    private(set) var events: [[String: Any]] = []

    /// Starts the browser with a fresh profile under `directory`.
    init(directory: URL) throws {
        guard let executable = Self.executable else { throw HarnessError("chromium is not installed") }
        // A browser that died must fail its test with EPIPE, not kill the test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        self.directory = directory
        let profile = directory.appendingPathComponent("chromium-profile")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        var arguments = [
            "--headless", "--remote-debugging-pipe", "--user-data-dir=\(profile.path)",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-extensions", "--disable-sync", "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--disable-domain-reliability", "--no-pings", "--no-proxy-server",
            "--password-store=basic", "--use-mock-keychain", "--hide-scrollbars", "--window-size=820,640",
            // Tests talk to loopback only: every other name fails to resolve inside the browser.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "about:blank",
        ]
        // Chromium refuses its sandbox as root (CI runs as root), and without root it needs user
        // namespaces, which many CI containers lack. The browser only ever loads our own pages from
        // loopback (every other name fails to resolve), so the tests run it unsandboxed everywhere.
        arguments.insert("--no-sandbox", at: 0)
        let toBrowser = Pipe(), fromBrowser = Pipe()
        let log = directory.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // sh moves the pipes to fds 3 and 4, then execs chromium in its place (same pid).
        process.arguments = ["-c", #"exec 3<&0 4>&1 0</dev/null 1>&2; exec "$0" "$@""#, executable] + arguments
        process.environment = [
            "HOME": profile.path, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": profile.path, "XDG_CACHE_HOME": profile.path,
        ]
        process.standardInput = toBrowser
        process.standardOutput = fromBrowser
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        commands = toBrowser.fileHandleForWriting
        replies = fromBrowser.fileHandleForReading
        _ = try send("Browser.getVersion", timeout: .seconds(60))
    }

    var pid: pid_t { process.processIdentifier }
    var log: String { (try? String(contentsOf: directory.appendingPathComponent("chromium.log"), encoding: .utf8)) ?? "" }

    /// Sends one command and waits for its reply; the reply's `result`, or an error with the
    /// protocol's message. Events arriving meanwhile are kept in ``events``.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Duration = .seconds(30)) throws
        -> [String: Any]
    {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        try commands.write(contentsOf: data)
        let deadline = ContinuousClock.now + timeout
        while true {
            let reply = try nextMessage(until: deadline, waitingFor: method)
            guard let replyID = reply["id"] as? Int else {
                events.append(reply)
                continue
            }
            guard replyID == id else { continue }
            if let error = reply["error"] as? [String: Any] {
                throw HarnessError("\(method) failed: \(error["message"] ?? error)")
            }
            return reply["result"] as? [String: Any] ?? [:]
        }
    }

    /// One message from the browser, waiting at most until `deadline`.
    private func nextMessage(until deadline: ContinuousClock.Instant, waitingFor method: String) throws -> [String: Any] {
        while true {
            if let end = buffer.firstIndex(of: 0) {
                let message = Array(buffer[..<end])
                buffer.removeSubrange(...end)
                guard let object = try JSONSerialization.jsonObject(with: Data(message)) as? [String: Any] else {
                    throw HarnessError("chromium sent something other than a JSON object")
                }
                return object
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw HarnessError("chromium did not answer \(method) in time") }
            var descriptor = pollfd(fd: replies.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(replies.fileDescriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw HarnessError("chromium closed the DevTools pipe: \(log.suffix(2000))") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    /// Stops the browser: `Browser.close`, then SIGKILL by pid if it is still running.
    func stop() {
        guard process.isRunning else { return }
        _ = try? send("Browser.close", timeout: .seconds(5))
        if !Harness.waitUntil(timeout: .seconds(10), { !process.isRunning }) {
            kill(pid, SIGKILL)
            _ = Harness.waitUntil(timeout: .seconds(5)) { !process.isRunning }
        }
    }

    deinit {
        stop()
        try? commands.close()
        try? replies.close()
    }
}
