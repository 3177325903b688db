import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of the test's own: a fresh cluster (`initdb`) in a temporary directory,
/// listening on 127.0.0.1 and a unix socket in that directory, run as the `postgres` user
/// (PostgreSQL refuses to run as root) and stopped by the postmaster's pid.
/// `postgres` runs in the foreground as the test's child, not through `pg_ctl`.
///
/// Made only through ``withPostgres(_:)``, which stops it and removes its directory.
final class PostgresServer {
    /// The newest installed server's programs (Debian: /usr/lib/postgresql/15/bin).
    static let binDirectory: String? = {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.compactMap(Int.init).sorted().last.map { "\(root)/\($0)/bin" }
            .flatMap { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") ? $0 : nil }
    }()

    /// Root (to run the server as `postgres`), the server installed, and the `postgres` user.
    static var isAvailable: Bool { getuid() == 0 && binDirectory != nil && getpwnam("postgres") != nil }

    static let user = "crocante"
    static let password = "outbox-test-password-0123"

    let directory: String
    let port: UInt16
    private let bin: String
    /// The postmaster now (setpriv execs it: the pid is the server's).
    private var process: ManagedProcess?
    private var starts = 0

    /// Where it listens for TCP: 127.0.0.1, or a test network host's address.
    let address: String
    /// The command prefix it runs under (a test network host's `ip netns exec …`), or none.
    private let launcher: [String]

    /// `postgres://…` for `CROCANTE_OUTBOX`, over TCP, without TLS.
    var url: String { url(password: Self.password) }

    func url(password: String) -> String {
        "postgres://\(Self.user):\(password)@\(address):\(port)/postgres?sslmode=disable"
    }

    /// - Parameters:
    ///   - address: the TCP address to listen on; the unix socket in ``directory`` is always there.
    ///   - launcher: a prefix that execs its arguments, e.g. into a network namespace.
    init(address: String = "127.0.0.1", launcher: [String] = []) throws {
        self.address = address
        self.launcher = launcher
        guard let bin = Self.binDirectory, let account = getpwnam("postgres") else { throw HarnessError("no PostgreSQL server") }
        self.bin = bin
        var template = Array("/tmp/crocante-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        directory = String(cString: made)
        let (uid, gid) = (account.pointee.pw_uid, account.pointee.pw_gid)
        chown(directory, uid, gid)
        let passwordFile = directory + "/password"
        FileManager.default.createFile(atPath: passwordFile, contents: Data(Self.password.utf8))
        chown(passwordFile, uid, gid)
        port = try Socket.freeTCPPort()
        // scram-sha-256 for every connection: the outbox authenticates as production would.
        try Self.runAsPostgres(
            bin + "/initdb", ["-D", directory + "/data", "-U", Self.user, "--auth=scram-sha-256", "--pwfile=" + passwordFile,
            "-E", "UTF8", "--no-sync"])
        // initdb allows loopback only; a test network host's peers are on its own subnet.
        let hba = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/data/pg_hba.conf"))
        try hba.seekToEnd()
        try hba.write(contentsOf: Data("host all all samenet scram-sha-256\n".utf8))
        try hba.close()
        try start()
    }

    /// Starts the server (again, after ``stop(immediately:)``) and waits until it answers.
    func start() throws {
        let command = launcher + [Self.setpriv] + Self.asPostgres + [
            bin + "/postgres", "-D", directory + "/data", "-c", "listen_addresses=\(address)", "-p", "\(port)", "-k", directory,
        ]
        let server = try ManagedProcess(
            URL(fileURLWithPath: command[0]), Array(command.dropFirst()),
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"], logDirectory: URL(fileURLWithPath: directory),
            name: "server-\(starts)")
        starts += 1
        process = server
        guard Harness.waitUntil(timeout: .seconds(60), { server.isRunning && (try? query("SELECT 1")) == ["1"] }) else {
            throw HarnessError("PostgreSQL did not start: \(server.stderr)")
        }
    }

    /// Stops the server by its pid: SIGINT (fast: sessions cut, a clean checkpoint) or SIGQUIT
    /// (immediate: no checkpoint, WAL recovery at the next start, as after a crash).
    func stop(immediately: Bool = false) {
        guard let process, process.isRunning else { return }
        process.send(immediately ? SIGQUIT : SIGINT)
        if process.waitForExit(timeout: .seconds(30)) == nil {
            process.send(SIGKILL)
            _ = process.waitForExit(timeout: .seconds(5))
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the postmaster and every server process it forked:
    /// connections then hang instead of failing, as with a server stuck on its disk.
    func freeze(_ frozen: Bool) {
        guard let pid = process?.pid else { return }
        for child in [pid] + Self.children(of: pid) { kill(child, frozen ? SIGSTOP : SIGCONT) }
    }

    /// The pids whose parent is `pid` (/proc/PID/stat's fourth field).
    private static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let child = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }

    /// The rows `sql` returns, `|`-separated, one line each (`psql -At`), over the unix socket
    /// (reachable from any network namespace).
    func query(_ sql: String) throws -> [String] {
        let result = try Harness.run(
            bin + "/psql", ["-h", directory, "-p", "\(port)", "-U", Self.user, "-d", "postgres", "-Atc", sql],
            environment: ["PGPASSWORD": Self.password, "PATH": "/usr/bin:/bin"])
        guard result.status == 0 else { throw HarnessError("psql: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// A single number `sql` returns.
    func count(_ sql: String) throws -> Int {
        guard let first = try query(sql).first, let value = Int(first) else { throw HarnessError("not a number: \(sql)") }
        return value
    }

    var log: String { (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "" }

    /// Stops the server and removes its files.
    func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// setpriv execs in place (no fork, no PAM session), so the pid started is the program's.
    private static let setpriv = "/usr/bin/setpriv"
    private static let asPostgres = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    /// Runs a server program to completion as the `postgres` user, from a directory it may enter.
    private static func runAsPostgres(_ program: String, _ arguments: [String]) throws {
        let result = try Harness.run(
            setpriv, asPostgres + ["/bin/sh", "-c", #"cd / && exec "$0" "$@""#, program] + arguments,
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
        guard result.status == 0 else {
            throw HarnessError("\(program) exited \(result.status): \(result.stderr)\(result.stdout)")
        }
    }
}

/// Runs `body` with a fresh PostgreSQL server, then stops it and removes its files.
func withPostgres<Result>(_ body: (PostgresServer) throws -> Result) throws -> Result {
    let server = try PostgresServer()
    defer { server.remove() }
    return try body(server)
}
