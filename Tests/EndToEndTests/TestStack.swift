import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nginx (nginx.conf.example, edited per test), or another front end running its deploy/ example,
/// in front of the built responder, with a recording stand-in backend, all on loopback and unix
/// sockets in one temporary directory.
///
/// Made only through ``withTestStack(_:sourceLocation:_:)``, which stops everything at the end
/// and fails the test when any responder it ran wrote a token, cookie or secret, to its output
/// or in clear to a spool file left in the stack's directory.
final class TestStack {
    /// How the test's stack is set up.
    struct Options {
        /// Where the responder listens, and how it gets its socket.
        enum Listen {
            /// `CROCANTE_LISTEN=unix:…`: the responder creates the socket.
            case unix
            /// `127.0.0.1` or `::1`, on a free port.
            case tcp(host: String)
            /// The test holds a unix socket and hands it over as systemd does (fd 3, `LISTEN_FDS`),
            /// so responders can be stopped and started while it stays open.
            case systemdSocket
            /// The held socket as fd 0 (spawn-fcgi, `StandardInput=socket`).
            case standardInputSocket
        }

        /// Stand-in flags; nil leaves nothing listening on the backend port (connection refused).
        var backend: [String]? = []
        /// Responder settings over ``TestStack/defaultEnvironment``; `{backend}` in a value becomes
        /// the stand-in's `127.0.0.1:port`.
        var environment: [String: String] = [:]
        var listen: Listen = .unix
        /// Text replacements made in nginx.conf.example (or the front end's example) after the
        /// socket and listen ones; each must match.
        var site: [(String, String)] = []
        /// Another front end than nginx, with its deploy/ example; the responder on a unix socket.
        var frontEnd: FrontEnd.Kind? = nil
        var responderArguments: [String] = []
        /// Default settings left out of the responder's environment altogether.
        var unsetEnvironment: [String] = []
        /// False: nginx and the backend only; the test calls ``TestStack/startResponder(_:)`` itself.
        var startsResponder = true
    }

    /// A valid configuration pointing at the stand-in.
    static let defaultEnvironment = [
        "SESSION_SECRET": Harness.secret,
        "API_GATEWAY": "http://{backend}/",
        "EP_AUTH_LOGOUT": "/auth/logout",
        "APP_ENV": "production",
        "CROCANTE_SOCKET_MODE": "0666",
        "CROCANTE_WORKERS": "4",
        "CROCANTE_DRAIN_TIMEOUT_MS": "3000",
    ]

    /// One worker and one backend call at a time: what the backend sees is in request order.
    static let oneAtATime = ["CROCANTE_WORKERS": "1", "CROCANTE_BACKEND_CONCURRENCY": "1"]

    let options: Options
    let directory: URL
    let socketPath: String
    /// Where the front end (nginx, or ``Options/frontEnd``) accepts, on 127.0.0.1.
    let nginxPort: UInt16
    /// Where nginx sends FastCGI: `unix:/path` or `host:port`.
    let fastcgiAddress: String
    /// The listening socket this test process holds for its responders, if it does.
    private(set) var heldSocket: Int32?
    /// The stand-in running now; ``startBackend(_:)`` and ``stopBackend()`` change it.
    var backend: StandInBackend?
    /// Every stand-in started, so each is stopped at the end.
    var backends: [StandInBackend] = []
    private(set) var backendPort: UInt16 = 0
    /// Every responder started, in order; set by ``startResponder(_:)``.
    var responders: [Responder] = []
    private(set) var nginx: Nginx?
    private(set) var frontEnd: FrontEnd?
    private var finished = false

    /// The responder started last.
    var responder: Responder { responders[responders.count - 1] }
    /// Where the stand-in records what it receives (absent when there is no stand-in).
    var recordFile: URL { directory.appendingPathComponent("backend.jsonl") }

    fileprivate init(_ options: Options) throws {
        self.options = options
        directory = try Harness.temporaryDirectory()
        socketPath = directory.appendingPathComponent("fcgi.sock").path
        nginxPort = try Socket.freeTCPPort()
        switch options.listen {
        case .unix, .systemdSocket, .standardInputSocket:
            fastcgiAddress = "unix:\(socketPath)"
        case .tcp(let host):
            let port = try Socket.freeTCPPort()
            fastcgiAddress = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    fileprivate func start() throws {
        switch options.listen {
        case .systemdSocket, .standardInputSocket: heldSocket = try Socket.listeningUnix(at: socketPath)
        case .unix, .tcp: break
        }
        if let arguments = options.backend {
            let backend = try StandInBackend(arguments, directory: directory)
            self.backend = backend
            backends.append(backend)
            backendPort = backend.port
        } else {
            backendPort = try Socket.freeTCPPort()
        }
        if options.startsResponder { try startResponder() }
        if let kind = options.frontEnd {
            guard fastcgiAddress.hasPrefix("unix:") else { throw HarnessError("\(kind) runs with the responder on a unix socket only") }
            let site = try FrontEnd.site(kind, socketPath: socketPath, port: nginxPort, replacements: options.site)
            frontEnd = try FrontEnd(kind, site: site, port: nginxPort, directory: directory)
        } else {
            nginx = try Nginx(site: try siteConfiguration(), port: nginxPort, directory: directory)
        }
    }

    /// The nginx site this stack runs.
    func siteConfiguration() throws -> String {
        try Nginx.site(fastcgiAddress: fastcgiAddress, port: nginxPort, replacements: options.site)
    }

    var nginxErrorLog: String { nginx?.errorLog ?? "" }

    /// Stops everything still running and checks every responder's output for secrets.
    fileprivate func finish(_ sourceLocation: SourceLocation) {
        guard !finished else { return }
        finished = true
        stopAll()
        for (index, responder) in responders.enumerated() {
            let leaks = SecretLedger.leaks(in: responder.stderr + responder.stdout)
            #expect(leaks.isEmpty, "responder \(index) wrote \(leaks.count) secret(s) to its output", sourceLocation: sourceLocation)
        }
        for spool in spoolDirectoriesInStack() { expectNoSecretsInClear(inSpool: spool, sourceLocation: sourceLocation) }
    }

    private func stopAll() {
        for responder in responders { responder.stop() }
        nginx?.stop()
        frontEnd?.stop()
        for backend in backends { backend.stop() }
    }

    deinit {
        stopAll()
        if let heldSocket { close(heldSocket) }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` against a fresh ``TestStack``, then stops it and checks that no responder it ran
/// wrote a secret (also when `body` or the start-up throws).
func withTestStack<Result>(
    _ options: TestStack.Options = .init(), sourceLocation: SourceLocation = #_sourceLocation, _ body: (TestStack) throws -> Result
) throws -> Result {
    let stack = try TestStack(options)
    defer { stack.finish(sourceLocation) }
    try stack.start()
    return try body(stack)
}
