import Foundation
import Testing

/// The files in deploy/ and nginx.conf.example, checked by the tools that will read them.
@Suite struct DeployTests {
    static let systemdIsRunning = FileManager.default.fileExists(atPath: "/run/systemd/system")

    /// The units with their paths pointed at the built binary, in a scratch directory.
    static func stagedUnits() throws -> URL {
        let directory = try Harness.temporaryDirectory()
        for unit in ["crocante-logout.socket", "crocante-logout.service"] {
            let text = try String(contentsOf: Harness.packageRoot.appendingPathComponent("deploy/\(unit)"), encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/crocante-logout", with: Harness.product("crocante-logout").path)
            try text.write(to: directory.appendingPathComponent(unit), atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test func systemdAcceptsTheUnits() throws {
        let directory = try Self.stagedUnits()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try Harness.run(
            "/usr/bin/systemd-analyze",
            ["verify", directory.appendingPathComponent("crocante-logout.socket").path,
             directory.appendingPathComponent("crocante-logout.service").path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test func theServiceIsHardened() throws {
        let directory = try Self.stagedUnits()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try Harness.run(
            "/usr/bin/systemd-analyze",
            ["security", "--offline=yes", "--no-pager", directory.appendingPathComponent("crocante-logout.service").path])
        let overall = result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = overall.flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        print("systemd-analyze security: \(overall ?? "no score")")
        #expect(score.map { $0 < 2.0 } == true, "\(result.stdout.suffix(400))")
    }

    @Test(.enabled(if: Self.systemdIsRunning, "needs a running systemd (PID 1); this machine has none"))
    func theHardenedServiceRunsUnderSystemd() throws {
        let unit = "crocante-logout-test-\(getpid())"
        let result = try Harness.run(
            "/usr/bin/systemd-run",
            ["--unit", unit, "--wait", "--collect", "-p", "DynamicUser=yes", "-p", "ProtectSystem=strict",
             "-p", "SystemCallFilter=@system-service", "-p", "MemoryDenyWriteExecute=yes",
             "-p", "Environment=SESSION_SECRET=\(Harness.secret) API_GATEWAY=http://127.0.0.1:9 EP_AUTH_LOGOUT=x",
             Harness.product("crocante-logout").path, "check-config"])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func installPutsEverythingUnderDestdir() throws {
        let stage = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: stage) }
        let result = try Harness.run(
            "/bin/bash", [Harness.packageRoot.appendingPathComponent("deploy/install").path],
            environment: ["DESTDIR": stage.path, "BINARY": Harness.product("crocante-logout").path, "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(result.stderr)")
        let manager = FileManager.default
        for path in ["usr/local/bin/crocante-logout", "etc/systemd/system/crocante-logout.service",
                     "etc/systemd/system/crocante-logout.socket", "etc/crocante-logout/env",
                     "usr/local/share/doc/crocante-logout/nginx.conf.example",
                     "usr/local/share/doc/crocante-logout/haproxy.cfg.example",
                     "usr/local/share/doc/crocante-logout/apache-crocante-logout.conf.example",
                     "usr/local/share/doc/crocante-logout/lighttpd-crocante-logout.conf.example"] {
            #expect(manager.fileExists(atPath: stage.appendingPathComponent(path).path), "\(path) missing")
        }
        #expect(manager.isExecutableFile(atPath: stage.appendingPathComponent("usr/local/bin/crocante-logout").path))
    }

    @Test func everyVariableIsInEnvExample() throws {
        let example = try String(contentsOf: Harness.packageRoot.appendingPathComponent("deploy/env.example"), encoding: .utf8)
        let readme = try String(contentsOf: Harness.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let variables = ["SESSION_SECRET", "SESSION_SECRET_FILE", "SESSION_SECRET_PREVIOUS", "SESSION_SECRET_PREVIOUS_FILE",
                         "API_GATEWAY", "EP_AUTH_LOGOUT", "APP_ENV", "CROCANTE_LISTEN", "CROCANTE_SOCKET_MODE",
                         "CROCANTE_WORKERS", "CROCANTE_LOGOUT_PATH", "CROCANTE_STATUS_PATH", "CROCANTE_PING_PATH",
                         "CROCANTE_QUEUE_CAPACITY", "CROCANTE_BACKEND_CONCURRENCY", "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS",
                         "CROCANTE_BACKEND_TIMEOUT_MS", "CROCANTE_DRAIN_TIMEOUT_MS", "CROCANTE_LOG_LEVEL"]
        for variable in variables {
            #expect(example.contains(variable), "env.example lacks \(variable)")
            #expect(readme.contains("`\(variable)`"), "README lacks \(variable)")
        }
    }
}
