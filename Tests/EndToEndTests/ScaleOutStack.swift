import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nginx.conf.example's scale-out upstream carrying traffic across hosts made of network
/// namespaces (``TestNetwork``): nginx on one, a responder on each upstream address of the example
/// on its own (each with its own spool, accepting only nginx's address), and the recording
/// stand-in on another. The test's clients reach nginx on a unix socket in the stack's directory,
/// the one way in from the test process's own namespace.
///
/// Made only through ``withScaleOutStack(sourceLocation:_:)``, which stops every process by pid,
/// deletes the namespaces (also when the test throws), and fails the test when a responder wrote
/// a token, cookie or secret to its output or in clear to its spool.
final class ScaleOutStack {
    /// nginx's host, outside the upstream's addresses; the responders accept only it.
    static let nginxAddress = "10.0.0.10"
    /// The stand-in's host and port.
    static let backendAddress = "10.0.0.20"
    static let backendPort = 8081
    /// The outbox's PostgreSQL host, when the stack has one.
    static let databaseAddress = "10.0.0.30"

    let directory: URL
    let network: TestNetwork
    /// The responder hosts' names (`a`, `b`, …), in the example's upstream order.
    let responderHosts: [String]
    /// Each responder host's `address:port`, from the example.
    let upstreams: [String: String]
    private(set) var nginx: Nginx?
    private(set) var backend: StandInBackend?
    /// The fleet's outbox (`CROCANTE_OUTBOX` on every responder), on its own host; nil: spools only.
    private(set) var database: PostgresServer?
    private let withOutbox: Bool
    /// Every responder run on each host, in order; the last one is the current one.
    private(set) var runs: [String: [Responder]] = [:]
    private var finished = false
    private let site: String

    var endpoint: HTTPEndpoint { .unix(path: directory.appendingPathComponent("http.sock").path) }
    var recordFile: URL { directory.appendingPathComponent("backend.jsonl") }

    /// The example's commented scale-out upstream block, uncommented, in place of its unix-socket
    /// upstream, and listening on a unix socket in `directory`; plus each server's `address:port`.
    static func site(directory: URL) throws -> (site: String, upstreams: [String]) {
        let example = try String(contentsOf: Harness.packageRoot.appendingPathComponent("nginx.conf.example"), encoding: .utf8)
        let lines = example.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "#upstream crocante_logout {"),
            let end = lines[start...].firstIndex(of: "#}"),
            let active = lines.firstIndex(of: "upstream crocante_logout {"),
            let activeEnd = lines[active...].firstIndex(of: "}")
        else { throw HarnessError("nginx.conf.example no longer has its commented scale-out upstream block") }
        let scaleOut = lines[start...end].map { String($0.dropFirst()) }
        let upstreams = scaleOut.compactMap { line -> String? in
            let words = line.split(separator: " ")
            return words.first == "server" && words.count >= 2 ? String(words[1].trimmingCharacters(in: CharacterSet(charactersIn: ";"))) : nil
        }
        guard upstreams.count >= 3 else { throw HarnessError("the scale-out upstream lists \(upstreams.count) servers, the test needs 3") }
        let replaced = lines[..<active] + scaleOut + lines[(activeEnd + 1)...]
        var site = replaced.joined(separator: "\n")
        let listen = "listen 80;"
        guard site.contains(listen) else { throw HarnessError("nginx.conf.example no longer contains \(listen)") }
        site = site.replacingOccurrences(of: listen, with: "listen unix:\(directory.path)/http.sock;")
        // What the test reads back: every upstream tried per request and how long it took.
        let location = "location = /api/auth/logout {"
        guard site.contains(location) else { throw HarnessError("nginx.conf.example no longer contains \(location)") }
        site = "log_format scaleout '$status $request_time $upstream_addr|$upstream_status|$upstream_connect_time';\n"
            + site.replacingOccurrences(of: location, with: "\(location)\n        access_log \(directory.path)/access.log scaleout;")
        return (site, upstreams)
    }

    fileprivate init(outbox: Bool) throws {
        withOutbox = outbox
        directory = try Harness.temporaryDirectory()
        do {
            let (site, upstreams) = try Self.site(directory: directory)
            let names = upstreams.indices.map { String(UnicodeScalar(UInt8(ascii: "a") + UInt8($0))) }
            responderHosts = names
            self.upstreams = Dictionary(uniqueKeysWithValues: zip(names, upstreams))
            self.site = site
            let addresses = upstreams.map { String($0.split(separator: ":")[0]) }
            let databaseHost = outbox ? [("database", Self.databaseAddress)] : []
            network = try TestNetwork(
                hosts: [("nginx", Self.nginxAddress), ("backend", Self.backendAddress)] + databaseHost
                    + zip(names, addresses).map { ($0, $1) })
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("hosts"), withIntermediateDirectories: false)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// The stand-in, a responder per host, then nginx, each in its namespace.
    fileprivate func start() throws {
        backend = try StandInBackend(
            ["--host", Self.backendAddress], directory: directory, port: UInt16(Self.backendPort), name: "backend",
            launcher: network.launcher("backend"))
        if withOutbox {
            database = try PostgresServer(address: Self.databaseAddress, launcher: network.launcher("database"))
        }
        for host in responderHosts {
            let spool = directory.appendingPathComponent("spool-\(host)").path
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try startResponder(host)
        }
        let socketPath: String
        if case .unix(let path) = endpoint { socketPath = path } else { socketPath = "" }
        nginx = try Nginx(site: site, directory: directory, launcher: network.launcher("nginx")) {
            guard let fd = try? Socket.connectUnix(path: socketPath) else { return false }
            close(fd)
            return true
        }
    }

    /// The settings of `host`'s responder: the harness defaults, its upstream address, only
    /// nginx's address allowed, its own spool, the stand-in across the bridge, and fast retries.
    func responderEnvironment(_ host: String) -> [String: String] {
        var environment = TestStack.defaultEnvironment.merging(TestStack.fastRetries) { $1 }
        environment["API_GATEWAY"] = "http://\(Self.backendAddress):\(Self.backendPort)/"
        environment["CROCANTE_LISTEN"] = upstreams[host]
        environment["CROCANTE_ALLOWED_CLIENTS"] = Self.nginxAddress
        environment["CROCANTE_SPOOL_DIR"] = directory.appendingPathComponent("spool-\(host)").path
        if let database {
            environment["CROCANTE_OUTBOX"] = database.url
            // A one-second call deadline: a lease of 7 s, so a dead host's rows are claimed soon.
            environment["CROCANTE_BACKEND_TIMEOUT_MS"] = "1000"
        }
        return environment
    }

    /// Starts (or restarts, on the same spool) `host`'s responder inside its namespace and waits
    /// for its `READY=1`.
    @discardableResult
    func startResponder(_ host: String) throws -> Responder {
        let run = runs[host, default: []].count
        let command = network.launcher(host) + [Harness.product("crocante-logout").path]
        // Their output and notify sockets in `hosts/`, apart from nginx's and the stand-in's files.
        let responder = try Responder(
            URL(fileURLWithPath: command[0]), Array(command.dropFirst()), environment: responderEnvironment(host),
            directory: directory.appendingPathComponent("hosts"), name: "responder-\(host)-\(run)")
        runs[host, default: []].append(responder)
        try responder.waitUntilReady()
        return responder
    }

    /// Runs a short shell script inside `host`'s namespace.
    func shell(in host: String, _ script: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let command = network.launcher(host) + ["/bin/bash", "-c", script]
        return try Harness.run(command[0], Array(command.dropFirst()))
    }

    /// The responder running on `host` now (its last run).
    func responder(_ host: String) -> Responder { runs[host]!.last! }

    /// `host`'s address, as the stand-in records the peer.
    func address(_ host: String) -> String { network.host(host).address }

    func backendRequests() -> [StandInBackend.Request] { StandInBackend.recorded(in: recordFile) }

    /// The distinct tokens the stand-in has received, from any responder host or from `host`.
    func deliveredTokens(from host: String? = nil) -> Set<String> {
        let peer = host.map(address)
        return Set(backendRequests().filter { peer == nil || $0.peer == peer }.compactMap(\.bearerToken))
    }

    /// Waits until every one of `tokens` has reached the stand-in; returns those still missing.
    func waitForDelivery(of tokens: some Collection<String>, timeout: Duration = .seconds(30)) -> Set<String> {
        let wanted = Set(tokens)
        _ = Harness.waitUntil(timeout: timeout) { wanted.isSubset(of: deliveredTokens()) }
        return wanted.subtracting(deliveredTokens())
    }

    /// Waits until the stand-in has received nothing new for `quiet`: every live responder has
    /// drained what it could deliver.
    func waitForQuiet(_ quiet: Duration = .seconds(2), timeout: Duration = .seconds(30)) {
        var last = -1
        var since = ContinuousClock.now
        _ = Harness.waitUntil(timeout: timeout) {
            let count = backendRequests().count
            if count != last { (last, since) = (count, .now) }
            return ContinuousClock.now - since >= quiet
        }
    }

    var nginxErrorLog: String { nginx?.errorLog ?? "" }

    /// One logout as nginx logged it.
    struct Passage {
        let status: Int
        /// Seconds from nginx's first byte read to its last byte sent.
        let seconds: Double
        /// Every upstream tried, in order (more than one: nginx failed over).
        let upstreams: [String]
    }

    /// Every logout nginx has logged so far.
    func passages() -> [Passage] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3, let status = Int(fields[0]), let seconds = Double(fields[1]) else { return nil }
            let addresses = fields[2].split(separator: "|").first ?? ""
            // "a, b" for tries within the upstream.
            let upstreams = addresses.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { $0 != ":" }
            return Passage(status: status, seconds: seconds, upstreams: upstreams)
        }
    }

    /// How many lines of nginx's error log contain `text`.
    func nginxErrors(containing text: String) -> Int {
        nginxErrorLog.split(separator: "\n").filter { $0.contains(text) }.count
    }

    fileprivate func finish(_ sourceLocation: SourceLocation) {
        guard !finished else { return }
        finished = true
        stopAll()
        for responder in runs.values.joined() {
            let leaks = SecretLedger.leaks(in: responder.stderr + responder.stdout)
            #expect(leaks.isEmpty, "a responder wrote \(leaks.count) secret(s) to its output", sourceLocation: sourceLocation)
        }
        for host in responderHosts {
            let spool = directory.appendingPathComponent("spool-\(host)").path
            let leaks = TestStack.secretsInClear(inSpool: spool)
            #expect(leaks.isEmpty, "spool of \(host) holds secrets in clear: \(leaks)", sourceLocation: sourceLocation)
        }
    }

    /// Stops every process by pid, then deletes the namespaces.
    private func stopAll() {
        for responder in runs.values.joined() { responder.stop() }
        nginx?.stop()
        backend?.stop()
        database?.remove()
        network.remove()
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` against a fresh ``ScaleOutStack``, then stops it, deletes its namespaces and
/// checks that no responder wrote a secret (also when `body` or the start-up throws).
/// With `outbox`, every responder shares a PostgreSQL outbox on a host of its own.
func withScaleOutStack<Result>(
    outbox: Bool = false, sourceLocation: SourceLocation = #_sourceLocation, _ body: (ScaleOutStack) throws -> Result
) throws -> Result {
    let stack = try ScaleOutStack(outbox: outbox)
    defer { stack.finish(sourceLocation) }
    try stack.start()
    return try body(stack)
}
