import Foundation
import Testing

/// The units under a real systemd (issue 13): `Tests/RealSystemd/harness` boots systemd as PID 1 of
/// fresh namespaces (its `boot` keeps the host's /tmp and files untouched), runs the cases with the
/// units as shipped and then with the .deb, and writes one `check NAME ok|FAIL DETAIL` line per
/// finding and one `value NAME NUMBER` line per count; this suite turns each check into an
/// expectation and prints the counts.
@Suite(.serialized) struct RealSystemdTests {
    /// What the harness needs that this machine lacks; empty when it can run. (The systemd it
    /// boots gets a fresh tmpfs on /tmp and the other shared directories from Tests/RealSystemd/boot
    /// first: without it, systemd-tmpfiles would empty the host's /tmp.)
    static let missing: [String] = {
        var missing: [String] = []
        if getuid() != 0 { missing.append("root") }
        let tools = ["/usr/bin/unshare", "/usr/bin/nsenter", "/lib/systemd/systemd", "/usr/sbin/nginx", "/usr/bin/wrk",
                     "/usr/bin/curl", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-shlibdeps", "/usr/bin/deb-systemd-helper",
                     "/usr/sbin/ip", "/usr/bin/python3"]
        missing += tools.filter { !FileManager.default.isExecutableFile(atPath: $0) }
        if (try? Harness.run("/usr/bin/python3", ["-c", "import cryptography"]).status) != 0 { missing.append("python3-cryptography") }
        if (try? Harness.run("/usr/bin/unshare", ["--pid", "--fork", "--mount", "--net", "true"]).status) != 0 {
            missing.append("unshare --pid --mount --net (not permitted here)")
        }
        return missing
    }()

    static var canRun: Bool {
        if !missing.isEmpty { print("RealSystemdTests skipped: missing \(missing.joined(separator: ", "))") }
        return missing.isEmpty
    }

    @Test(
        .enabled(
            if: canRun,
            "needs root, unshare and nsenter permitted, /lib/systemd/systemd, nginx, wrk, curl, dpkg-dev, python3-cryptography (scripts/install-deps); what is missing is printed"),
        .timeLimit(.minutes(10)))
    func theUnitsAndThePackageUnderARealSystemd() throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let results = directory.appendingPathComponent("results.txt")
        let logURL = directory.appendingPathComponent("harness.log")
        try #require(FileManager.default.createFile(atPath: logURL.path, contents: nil), "cannot create \(logURL.path)")
        let log = try FileHandle(forWritingTo: logURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            Harness.packageRoot.appendingPathComponent("Tests/RealSystemd/harness").path,
            "--bin", Harness.productsDirectory.path, "--out", results.path,
        ]
        process.standardOutput = log
        process.standardError = log
        try process.run()
        process.waitUntilExit()
        try log.close()
        let transcript = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        let lines = ((try? String(contentsOf: results, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)

        var values: [String] = []
        var checks = 0
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 3 else { continue }
            switch fields[0] {
            case "value": values.append("\(fields[1]) = \(fields[2...].joined(separator: " "))")
            case "check":
                checks += 1
                let detail = fields.count > 3 ? fields[3] : ""
                #expect(fields[2] == "ok", "\(fields[1]): \(detail)")
            default: continue
            }
        }
        print("real systemd: \(checks) checks; " + values.joined(separator: "; "))
        #expect(process.terminationStatus == 0, "harness exit \(process.terminationStatus):\n\(transcript.suffix(3000))")
        #expect(checks >= 30, "the harness stopped early:\n\(transcript.suffix(3000))")
    }
}
