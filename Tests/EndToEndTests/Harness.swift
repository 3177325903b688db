import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Paths, processes and clients for tests that run the real binaries behind a real nginx,
/// all on loopback or unix sockets in a temporary directory, each stopped by pid.
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

    /// A fresh directory under /tmp, removed by the caller's `defer`.
    static func temporaryDirectory() throws -> URL {
        var template = Array("/tmp/crocante-e2e-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        let path = String(cString: made)
        chmod(path, 0o755)
        return URL(fileURLWithPath: path)
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HarnessError("no free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A listening unix socket at `path` (mode 0666), held by the test as systemd holds one.
    static func listeningUnixSocket(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = Socket.withSockaddr(Socket.unix(path)) { bind(fd, $0, $1) }
        guard fd >= 0, bound == 0, chmod(path, 0o666) == 0, listen(fd, 4096) == 0 else {
            throw HarnessError("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// One request through nginx on `port` with curl: the parsed answer and curl's raw output.
    static func curl(port: UInt16, _ method: String, path: String, headers: [String], extra: [String])
        throws -> (answer: Stack.Answer, raw: String)
    {
        var arguments = ["-sS", "-i", "--max-time", "30"] + (method == "HEAD" ? ["-I"] : ["-X", method])
        for header in headers { arguments += ["-H", header] }
        arguments += extra + ["http://127.0.0.1:\(port)\(path)"]
        let result = try run("/usr/bin/curl", arguments)
        guard result.status == 0 else { throw HarnessError("curl failed (\(result.status)): \(result.stderr)") }
        return (try RawHTTP.parse(Array(result.stdout.utf8)), result.stdout)
    }

    /// nginx.conf.example for a test: the socket, the listen address and `replacements` swapped in,
    /// each of which must still be in the file.
    static func nginxSite(fastcgiAddress: String, port: UInt16, replacements: [(String, String)] = []) throws -> String {
        var site = try String(contentsOf: packageRoot.appendingPathComponent("nginx.conf.example"), encoding: .utf8)
        for (from, to) in [("unix:/run/crocante-logout/fcgi.sock", fastcgiAddress), ("listen 80;", "listen 127.0.0.1:\(port);")]
            + replacements
        {
            guard site.contains(from) else { throw HarnessError("nginx.conf.example no longer contains \(from)") }
            site = site.replacingOccurrences(of: from, with: to)
        }
        return site
    }

    /// Runs nginx in the foreground with `site` inside a minimal main configuration, everything
    /// under `directory`, and waits until it accepts on `port`.
    static func startNginx(in directory: URL, site: String, port: UInt16) throws -> ManagedProcess {
        let root = directory.path
        let main = """
            \(geteuid() == 0 ? "user root;" : "")
            worker_processes 1;
            error_log \(root)/nginx-error.log info;
            pid \(root)/nginx.pid;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(root)/body;
                fastcgi_temp_path \(root)/fastcgi;
                proxy_temp_path \(root)/proxy;
                uwsgi_temp_path \(root)/uwsgi;
                scgi_temp_path \(root)/scgi;
                include \(root)/site.conf;
            }
            """
        try site.write(to: directory.appendingPathComponent("site.conf"), atomically: true, encoding: .utf8)
        try main.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        if !FileManager.default.fileExists(atPath: "\(root)/fastcgi_params") {
            try FileManager.default.copyItem(atPath: "/etc/nginx/fastcgi_params", toPath: "\(root)/fastcgi_params")
        }
        let nginx = try ManagedProcess(
            URL(fileURLWithPath: "/usr/sbin/nginx"), ["-p", root, "-c", "\(root)/nginx.conf", "-g", "daemon off;"],
            environment: [:], logDirectory: directory, name: "nginx")
        guard waitUntil({ RawHTTP.accepts(port: port) || !nginx.process.isRunning }), nginx.process.isRunning else {
            throw HarnessError("nginx did not start: \(nginx.stderr)")
        }
        return nginx
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

    /// Cookies sealed by Node exactly as the origin's login seals them.
    static func originCookies(plaintexts: [String], secret: String = Harness.secret) throws -> [String] {
        let input = try JSONSerialization.data(withJSONObject: plaintexts)
        let result = try run("/usr/bin/env", ["node", packageRoot.appendingPathComponent("scripts/origin-seal.js").path],
                             environment: ["SESSION_SECRET": secret, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                             stdin: input)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        guard result.status == 0, lines.count == plaintexts.count else { throw HarnessError("origin-seal.js failed: \(result.stderr)") }
        return lines
    }

    static func originJSON(token: String) -> String {
        let escaped = String(data: try! JSONSerialization.data(withJSONObject: [token], options: [.withoutEscapingSlashes]), encoding: .utf8)!
        return "{\"token\":\(escaped.dropFirst().dropLast()),\"issuedAt\":\(Int(Date().timeIntervalSince1970 * 1000))}"
    }

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
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = standardInput
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }
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
