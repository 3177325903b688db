import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// nginx (configured from nginx.conf.example) in front of the built responder, with a
/// recording stand-in backend; all on loopback and unix sockets in one temporary directory.
final class Stack {
    let directory: URL
    let socketPath: String
    let nginxPort: UInt16
    let recordURL: URL
    private(set) var backend: ManagedProcess?
    private(set) var backendPort: UInt16 = 0
    private(set) var responder: ManagedProcess!
    private(set) var nginx: ManagedProcess!
    /// Hand the held socket over as fd 0 (spawn-fcgi, `StandardInput=socket`) instead of `LISTEN_FDS`.
    let socketAsStandardInput: Bool
    /// Where nginx sends FastCGI and the responder listens: `unix:/path` or `host:port`.
    let fastcgiAddress: String
    /// The listening socket this test process holds for its responders, if it does.
    let heldSocket: Int32?

    /// - Parameters:
    ///   - backendArguments: stand-in flags, e.g. `["--status", "500"]`; nil leaves nothing listening (refused).
    ///   - environment: settings for the responder, over the defaults below.
    ///   - holdSocket: create the listening socket here and hand it to each responder as systemd
    ///     does (`LISTEN_FDS`, fd 3), so responders can be restarted while it stays open.
    init(
        backendArguments: [String]? = [], environment: [String: String] = [:], responderArguments: [String] = [],
        holdSocket: Bool = false, socketAsStandardInput: Bool = false, tcpHost: String? = nil
    ) throws {
        self.socketAsStandardInput = socketAsStandardInput
        directory = try Harness.temporaryDirectory()
        socketPath = directory.appendingPathComponent("fcgi.sock").path
        if let tcpHost {
            let port = try Harness.freePort()
            fastcgiAddress = tcpHost.contains(":") ? "[\(tcpHost)]:\(port)" : "\(tcpHost):\(port)"
        } else {
            fastcgiAddress = "unix:\(socketPath)"
        }
        heldSocket = holdSocket ? try Harness.listeningUnixSocket(at: socketPath) : nil
        recordURL = directory.appendingPathComponent("backend.jsonl")
        nginxPort = try Harness.freePort()
        if let backendArguments {
            let backend = try ManagedProcess(
                Harness.product("crocante-standin-backend"), ["--port", "0", "--record", recordURL.path] + backendArguments,
                environment: [:], logDirectory: directory, name: "backend")
            guard Harness.waitUntil({ backend.stdout.contains("listening on") }),
                let port = backend.stdout.split(separator: "\n").first?.split(separator: ":").last.flatMap({ UInt16($0) })
            else { throw HarnessError("stand-in backend did not start: \(backend.stderr)") }
            self.backend = backend
            backendPort = port
        } else {
            backendPort = try Harness.freePort()
        }
        try startResponder(environment: environment, arguments: responderArguments)
        try startNginx()
    }

    /// The responder's environment: a valid configuration pointing at the stand-in.
    func responderEnvironment(_ overrides: [String: String]) -> [String: String] {
        var environment = [
            "SESSION_SECRET": Harness.secret,
            "API_GATEWAY": "http://127.0.0.1:\(backendPort)/",
            "EP_AUTH_LOGOUT": "/auth/logout",
            "APP_ENV": "production",
            "CROCANTE_LISTEN": fastcgiAddress,
            "CROCANTE_SOCKET_MODE": "0666",
            "CROCANTE_WORKERS": "4",
            "CROCANTE_DRAIN_TIMEOUT_MS": "3000",
        ]
        environment.merge(overrides) { $1 }
        return environment
    }

    func startResponder(environment: [String: String] = [:], arguments: [String] = []) throws {
        let binary = Harness.product("crocante-logout")
        let responder: ManagedProcess
        if let heldSocket, socketAsStandardInput {
            var environment = responderEnvironment(environment)
            environment["CROCANTE_LISTEN"] = "auto"
            responder = try ManagedProcess(
                binary, arguments, environment: environment, logDirectory: directory,
                name: "responder-\(Int.random(in: 0..<1_000_000))",
                standardInput: FileHandle(fileDescriptor: heldSocket, closeOnDealloc: false))
        } else if let heldSocket {
            // As systemd does: the socket at fd 3, LISTEN_FDS=1, LISTEN_PID the responder's own pid
            // (sh sets it, then execs the responder in its place, keeping the pid).
            var environment = responderEnvironment(environment)
            environment["CROCANTE_LISTEN"] = "auto"
            responder = try ManagedProcess(
                URL(fileURLWithPath: "/bin/sh"),
                ["-c", #"exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@""#, binary.path] + arguments,
                environment: environment, logDirectory: directory, name: "responder-\(Int.random(in: 0..<1_000_000))",
                standardInput: FileHandle(fileDescriptor: heldSocket, closeOnDealloc: false))
        } else {
            responder = try ManagedProcess(
                binary, arguments, environment: responderEnvironment(environment),
                logDirectory: directory, name: "responder-\(Int.random(in: 0..<1_000_000))")
        }
        guard Harness.waitUntil({ responder.stderr.contains(" ready") || !responder.process.isRunning }),
            responder.process.isRunning
        else { throw HarnessError("responder did not start: \(responder.stderr)") }
        self.responder = responder
    }

    /// nginx.conf.example with the socket and the listen address replaced, inside a minimal main config.
    func startNginx() throws {
        nginx = try Harness.startNginx(
            in: directory, site: try Harness.nginxSite(fastcgiAddress: fastcgiAddress, port: nginxPort), port: nginxPort)
    }

    /// An HTTP answer as curl saw it.
    struct Answer {
        let status: Int
        /// Header lines in order, as sent (without the status line).
        let headerLines: [String]
        let body: String

        func header(_ name: String) -> String? {
            headerLines.first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
    }

    /// One request through nginx with curl.
    func request(_ method: String = "POST", path: String = "/api/auth/logout", headers: [String] = [], extra: [String] = [])
        throws -> Answer
    {
        try Harness.curl(port: nginxPort, method, path: path, headers: headers, extra: extra).answer
    }

    /// POST /api/auth/logout with the given session cookie value (or none).
    func logout(cookie: String?) throws -> Answer {
        try request(headers: cookie.map { ["Cookie: crocante_session=\($0)"] } ?? [])
    }

    /// One request the stand-in backend recorded.
    struct BackendRequest: Decodable {
        let method: String
        let uri: String
        let headers: [[String]]

        func header(_ name: String) -> String? {
            headers.first { $0[0].lowercased() == name.lowercased() }?[1]
        }

        /// The requests a stand-in backend recorded in `file`, one JSON line each.
        static func recorded(in file: URL) -> [BackendRequest] {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(BackendRequest.self, from: Data($0.utf8)) }
        }
    }

    /// Everything the stand-in backend has received so far.
    func backendRequests() -> [BackendRequest] { BackendRequest.recorded(in: recordURL) }

    /// Stops everything, responder first so its exit can be inspected by the caller before this.
    func stop() {
        responder?.stop()
        nginx?.stop()
        backend?.stop()
    }

    deinit {
        stop()
        if let heldSocket { close(heldSocket) }
        try? FileManager.default.removeItem(at: directory)
    }
}
