import Foundation
import LogoutCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Support for the fault, bad-input, signal and secret suites: a stack whose nginx site, listen
// address and backend are chosen per test, raw HTTP and FastCGI clients that send exact bytes,
// the responder's final counts, and a ledger of every secret the tests use.

// MARK: - Secrets

/// Every token, cookie value and secret the end-to-end tests have used, across the whole run;
/// every responder's output is checked against all of it when its test ends.
enum SecretLedger {
    private static let recorded = Mutex<Set<String>>([Harness.secret, Harness.previousSecret, Seal.foreignSecret])

    static func record(_ values: some Sequence<String>) {
        recorded.withLock { set in
            for value in values where !value.isEmpty { set.insert(value) }
        }
    }

    static func record(_ value: String) { record([value]) }

    static var all: Set<String> { recorded.withLock { $0 } }

    /// The recorded values that appear in `log`. Values of 8 bytes or more count anywhere; a
    /// shorter one (a 1-byte token) only as a whole word or a whole `key=value` value, since
    /// short strings occur in ordinary log text.
    static func leaks(in log: String) -> [String] {
        let words = Set(
            log.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).flatMap { word -> [Substring] in
                guard let equals = word.firstIndex(of: "=") else { return [word] }
                return [word, word[word.index(after: equals)...]]
            }.map(String.init))
        return all.filter { $0.utf8.count >= 8 ? log.contains($0) : words.contains($0) }.sorted()
    }
}

/// Session cookies for the tests; every one is recorded in the ``SecretLedger``.
enum Seal {
    /// A secret neither the responder's current nor its previous one.
    static let foreignSecret = "e2e-foreign-secret-0123456789abcdefgh"

    /// Cookies sealed by Node exactly as the origin does, one per plaintext.
    static func origin(_ plaintexts: [String], secret: String = Harness.secret) throws -> [String] {
        SecretLedger.record(plaintexts)
        let cookies = try Harness.originCookies(plaintexts: plaintexts, secret: secret)
        SecretLedger.record(cookies)
        return cookies
    }

    /// Origin cookies with the JSON plaintext `{"token":…,"issuedAt":…}` for each token.
    static func sessions(_ tokens: [String], secret: String = Harness.secret) throws -> [String] {
        SecretLedger.record(tokens)
        return try origin(tokens.map(Harness.originJSON(token:)), secret: secret)
    }

    static func session(_ token: String, secret: String = Harness.secret) throws -> String {
        try sessions([token], secret: secret)[0]
    }

    /// Any plaintext bytes (also invalid UTF-8, which Node's string API cannot seal), sealed by
    /// the responder's own `SealedSession.seal` in the origin's format.
    static func bytes(_ plaintext: [UInt8], secret: String = Harness.secret) throws -> String {
        if let text = String(validating: plaintext, as: UTF8.self) { SecretLedger.record(text) }
        let cookie = try SealedSession.seal(plaintext: plaintext, with: SessionSecret(secret, setting: "test"))
        SecretLedger.record(cookie)
        return cookie
    }

    /// Unique tokens for one test, header-safe and never hex-only.
    static func tokens(_ count: Int, _ label: String) -> [String] {
        let run = UUID().uuidString.prefix(8)
        return (0..<count).map { "tok-\(label)-\(run)-\($0)" }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: String) -> [UInt8] {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Array(Data(base64Encoded: standard) ?? Data())
    }

    /// `cookie` with one bit of the decoded byte at `offset` flipped (0: iv, 16: tag, 32: ciphertext).
    static func tampered(_ cookie: String, at offset: Int) -> String {
        var bytes = unbase64url(cookie)
        bytes[offset] ^= 0x01
        let value = base64url(bytes)
        SecretLedger.record(value)
        return value
    }

    static func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }
}

// MARK: - The stack

/// nginx (from nginx.conf.example, edited per test) in front of the built responder, with a
/// recording stand-in backend, all on loopback and unix sockets in one temporary directory.
///
/// Unlike ``Stack`` it can listen on TCP, edit the nginx site, restart the responder, and checks
/// at ``finish(_:)`` that no responder it ran wrote a secret.
final class FaultStack {
    enum Listen {
        case unix
        /// `127.0.0.1` or `::1`, on a free port.
        case tcp(host: String)
    }

    struct Options {
        /// Stand-in flags; nil leaves nothing listening on the backend port (connection refused).
        var backend: [String]? = []
        /// Responder settings over ``FaultStack/defaultEnvironment``; `{backend}` in a value
        /// becomes the stand-in's `127.0.0.1:port`.
        var environment: [String: String] = [:]
        var listen: Listen = .unix
        /// Text replacements made in nginx.conf.example after the socket and listen ones; each
        /// must match, so a change to the example cannot silently make a test vacuous.
        var site: [(String, String)] = []

        init(backend: [String]? = [], environment: [String: String] = [:], listen: Listen = .unix, site: [(String, String)] = []) {
            self.backend = backend
            self.environment = environment
            self.listen = listen
            self.site = site
        }
    }

    static let defaultEnvironment = [
        "SESSION_SECRET": Harness.secret,
        "API_GATEWAY": "http://{backend}/",
        "EP_AUTH_LOGOUT": "/auth/logout",
        "APP_ENV": "production",
        "CROCANTE_SOCKET_MODE": "0666",
        "CROCANTE_WORKERS": "4",
        "CROCANTE_DRAIN_TIMEOUT_MS": "3000",
    ]

    let options: Options
    let directory: URL
    let socketPath: String
    let nginxPort: UInt16
    let recordURL: URL
    /// What CROCANTE_LISTEN is set to, and what nginx's upstream `server` names.
    let listenValue: String
    let upstreamServer: String
    private(set) var backend: ManagedProcess?
    private(set) var backendPort: UInt16 = 0
    private(set) var responders: [ManagedProcess] = []
    private(set) var nginx: ManagedProcess?
    private var finished = false

    var responder: ManagedProcess { responders[responders.count - 1] }

    init(_ options: Options = Options()) throws {
        self.options = options
        directory = try Harness.temporaryDirectory()
        socketPath = directory.appendingPathComponent("fcgi.sock").path
        recordURL = directory.appendingPathComponent("backend.jsonl")
        nginxPort = try Harness.freePort()
        switch options.listen {
        case .unix:
            listenValue = "unix:\(socketPath)"
            upstreamServer = "unix:\(socketPath)"
        case .tcp(let host):
            let port = try Harness.freePort()
            let literal = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            listenValue = literal
            upstreamServer = literal
        }
        do {
            if let arguments = options.backend {
                let backend = try ManagedProcess(
                    Harness.product("crocante-standin-backend"), ["--port", "0", "--record", recordURL.path] + arguments,
                    environment: [:], logDirectory: directory, name: "backend")
                self.backend = backend
                guard Harness.waitUntil({ backend.stdout.contains("listening on") }),
                    let port = backend.stdout.split(separator: "\n").first?.split(separator: ":").last.flatMap({ UInt16($0) })
                else { throw HarnessError("stand-in backend did not start: \(backend.stderr)") }
                backendPort = port
            } else {
                backendPort = try Harness.freePort()
            }
            try startResponder()
            try startNginx()
        } catch {
            stopAll()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Runs `body` against a fresh stack, then ``finish(_:)``.
    static func with<Result>(
        _ options: Options = Options(), sourceLocation: SourceLocation = #_sourceLocation, _ body: (FaultStack) throws -> Result
    ) throws -> Result {
        let stack = try FaultStack(options)
        defer { stack.finish(sourceLocation) }
        return try body(stack)
    }

    func environment(_ overrides: [String: String] = [:]) -> [String: String] {
        var environment = Self.defaultEnvironment
        environment["CROCANTE_LISTEN"] = listenValue
        environment.merge(options.environment) { $1 }
        environment.merge(overrides) { $1 }
        return environment.mapValues { $0.replacingOccurrences(of: "{backend}", with: "127.0.0.1:\(backendPort)") }
    }

    /// Starts a responder (again) with the stack's settings and `overrides`; waits for `ready`.
    func startResponder(_ overrides: [String: String] = [:]) throws {
        let responder = try ManagedProcess(
            Harness.product("crocante-logout"), [], environment: environment(overrides), logDirectory: directory,
            name: "responder-\(responders.count)")
        responders.append(responder)
        guard Harness.waitUntil({ responder.stderr.contains(" ready") || !responder.process.isRunning }),
            responder.process.isRunning
        else { throw HarnessError("responder did not start: \(responder.stderr)") }
    }

    /// The nginx site this stack runs: nginx.conf.example with the socket, listen address and
    /// the options' replacements.
    func siteConfiguration() throws -> String {
        try Harness.nginxSite(fastcgiAddress: upstreamServer, port: nginxPort, replacements: options.site)
    }

    private func startNginx() throws {
        nginx = try Harness.startNginx(in: directory, site: try siteConfiguration(), port: nginxPort)
    }

    var nginxErrorLog: String {
        (try? String(contentsOf: directory.appendingPathComponent("nginx-error.log"), encoding: .utf8)) ?? ""
    }

    // MARK: Requests

    /// One request through nginx with curl (``Harness/curl(port:_:path:headers:extra:)``); also the raw output.
    func curl(_ method: String = "POST", path: String = "/api/auth/logout", headers: [String] = [], extra: [String] = [])
        throws -> (answer: Stack.Answer, raw: String)
    {
        try Harness.curl(port: nginxPort, method, path: path, headers: headers, extra: extra)
    }

    /// One request through nginx with exact bytes: each `cookies` element becomes its own
    /// `Cookie:` header line.
    func send(
        _ method: String = "POST", path: String = "/api/auth/logout", cookies: [[UInt8]] = [], headers: [String] = [],
        body: [UInt8] = []
    ) throws -> Stack.Answer {
        try RawHTTP.parse(RawHTTP.exchange(port: nginxPort, RawHTTP.request(method, path: path, cookies: cookies, headers: headers, body: body)))
    }

    /// POST /api/auth/logout with `crocante_session=<cookie>` (or no cookie).
    func logout(_ cookie: String?) throws -> Stack.Answer {
        try send(cookies: cookie.map { [Array("crocante_session=\($0)".utf8)] } ?? [])
    }

    // MARK: What the backend saw

    func backendRequests() -> [Stack.BackendRequest] { Stack.BackendRequest.recorded(in: recordURL) }

    var backendBearers: [String] { backendRequests().compactMap { $0.header("Authorization") } }

    /// Waits until the backend has seen at least `count` requests; true when it has seen exactly that many.
    /// With one worker and one backend call at a time, a count that stops at `count` after a final
    /// valid logout proves that nothing before it called the backend.
    func backendReaches(_ count: Int) -> Bool {
        _ = Harness.waitUntil { backendRequests().count >= count }
        return backendRequests().count == count
    }

    // MARK: Stopping

    /// Sends `signal` to the current responder and waits for it to exit.
    func stopResponder(_ signal: Int32 = SIGTERM) -> (status: Int32?, report: StopReport?) {
        responder.send(signal)
        let status = responder.waitForExit()
        return (status, StopReport(log: responder.stderr))
    }

    /// Stops everything still running and checks every responder's output for secrets.
    func finish(_ sourceLocation: SourceLocation = #_sourceLocation) {
        guard !finished else { return }
        finished = true
        stopAll()
        for (index, responder) in responders.enumerated() {
            let leaks = SecretLedger.leaks(in: responder.stderr + responder.stdout)
            #expect(leaks.isEmpty, "responder \(index) wrote \(leaks.count) secret(s) to its output", sourceLocation: sourceLocation)
        }
    }

    private func stopAll() {
        for responder in responders { responder.stop() }
        nginx?.stop()
        backend?.stop()
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The totals in the responder's final `stopped` line.
struct StopReport: Equatable, Sendable, CustomStringConvertible {
    var values: [String: Int]

    /// Nil when `log` has no `stopped` line.
    init?(log: String) {
        guard let line = log.split(separator: "\n").last(where: { $0.hasSuffix("] stopped") }) else { return nil }
        values = [:]
        for field in line.split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
        }
    }

    init(_ values: [String: Int]) { self.values = values }

    subscript(_ key: String) -> Int? { values[key] }

    var description: String { values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }

    /// Every total, with the ones not given expected to be 0.
    static func expecting(requests: Int, queued: Int = 0, revoked: Int = 0, rejected: Int = 0, failed: Int = 0, lost: Int = 0)
        -> StopReport
    {
        StopReport([
            "requests": requests, "revocations_queued": queued, "revoked": revoked, "rejected": rejected, "failed": failed,
            "dropped": 0, "lost": lost,
        ])
    }
}

/// Lines of a log in order, to assert that one line came before another.
func lineIndex(_ log: String, _ predicate: (Substring) -> Bool) -> Int? {
    log.split(separator: "\n").firstIndex(where: predicate)
}

// MARK: - Raw HTTP

/// HTTP/1.1 over a plain socket: exact request bytes (invalid UTF-8, repeated headers), no curl.
enum RawHTTP {
    static func request(_ method: String, path: String, cookies: [[UInt8]], headers: [String], body: [UInt8]) -> [UInt8] {
        var bytes = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".utf8)
        for cookie in cookies { bytes += Array("Cookie: ".utf8) + cookie + [0x0D, 0x0A] }
        for header in headers { bytes += Array("\(header)\r\n".utf8) }
        if !body.isEmpty || method == "POST" || method == "PUT" { bytes += Array("Content-Length: \(body.count)\r\n".utf8) }
        return bytes + [0x0D, 0x0A] + body
    }

    /// Sends `request` and reads until the server closes.
    static func exchange(port: UInt16, _ request: [UInt8]) throws -> [UInt8] {
        let fd = try Socket.connectTCP(port: port)
        defer { close(fd) }
        try Socket.writeAll(fd, request)
        return try Socket.readToEnd(fd)
    }

    static func parse(_ bytes: [UInt8]) throws -> Stack.Answer {
        let separator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) }) else {
            throw HarnessError("no end of headers in: \(String(decoding: bytes, as: UTF8.self))")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw HarnessError("no status line in: \(String(decoding: bytes, as: UTF8.self))")
        }
        return Stack.Answer(status: status, headerLines: Array(lines.dropFirst()), body: String(decoding: bytes[(end + 4)...], as: UTF8.self))
    }

    static func accepts(port: UInt16) -> Bool {
        guard let fd = try? Socket.connectTCP(port: port) else { return false }
        close(fd)
        return true
    }
}

/// Blocking sockets for the clients above; every wait is bounded so a broken server fails a test
/// instead of hanging it.
enum Socket {
    static func connectTCP(host: String = "127.0.0.1", port: UInt16) throws -> Int32 {
        try connect(AF_INET, to: inet(host, port: port), label: "\(host):\(port)")
    }

    static func connectUnix(path: String) throws -> Int32 {
        try connect(AF_UNIX, to: unix(path), label: path)
    }

    /// An IPv4 address and port.
    static func inet(_ host: String = "127.0.0.1", port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    /// A unix socket path.
    static func unix(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        return address
    }

    /// Calls `body` with `address` as the `sockaddr` pointer and length the socket calls take.
    static func withSockaddr<Address, Result>(_ address: Address, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<Address>.size)) }
        }
    }

    private static func connect<Address>(_ domain: Int32, to address: Address, label: String) throws -> Int32 {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        guard withSockaddr(address, { Glibc.connect(fd, $0, $1) }) == 0 else {
            let code = errno
            close(fd)
            throw HarnessError("connect \(label): errno \(code)")
        }
        setTimeouts(fd)
        return fd
    }

    private static func setTimeouts(_ fd: Int32) {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw HarnessError("send: errno \(errno)") }
            offset += written
        }
    }

    static func readToEnd(_ fd: Int32) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return result }
            guard count > 0 else { throw HarnessError("recv: errno \(errno) after \(result.count) bytes") }
            result += buffer[..<count]
        }
    }

    /// Closes with a TCP reset (SO_LINGER 0) instead of a FIN, as a client that gives up does.
    static func abort(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }
}

// MARK: - FastCGI client

/// Just enough of FastCGI (responder role, request id 1) to talk to the responder's socket
/// directly: to hold a request half-sent across a signal, or to send a broken one.
enum FastCGIClient {
    static func record(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
        [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }

    static func length(_ count: Int) -> [UInt8] {
        count < 128 ? [UInt8(count)] : [UInt8((count >> 24) | 0x80), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
    }

    /// A complete request: begin, the parameters nginx would send, empty stdin.
    static func request(method: String = "POST", path: String = "/api/auth/logout", cookie: String?) -> [UInt8] {
        var parameters: [(String, String)] = [
            ("REQUEST_METHOD", method), ("DOCUMENT_URI", path), ("SCRIPT_NAME", path), ("REQUEST_URI", path),
            ("QUERY_STRING", ""), ("CONTENT_LENGTH", "0"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ]
        if let cookie { parameters.append(("HTTP_COOKIE", "crocante_session=\(cookie)")) }
        var encoded: [UInt8] = []
        for (name, value) in parameters {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        return record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + record(4, encoded) + record(4, []) + record(5, [])
    }

    /// The CGI response (the STDOUT records joined) from a response stream.
    static func stdout(of bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            let start = offset + 8
            guard start + length <= bytes.count else { break }
            if type == 6 { output += bytes[start..<(start + length)] }
            offset = start + length + padding
        }
        return output
    }
}

// MARK: - Concurrency and /proc

/// Runs `body(0..<count)` on `count` threads at once and returns the results in index order.
func onThreads<Value: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> Value) -> [Value] {
    let results = ThreadResults<Value>()
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            let value = body(index)
            results.values.withLock { $0[index] = value }
            group.leave()
        }
        thread.start()
    }
    group.wait()
    return results.values.withLock { values in (0..<count).map { values[$0]! } }
}

private final class ThreadResults<Value: Sendable>: Sendable {
    let values = Mutex<[Int: Value]>([:])
}

enum Proc {
    /// The whole of a /proc file: it reports size 0 and hands out one page per read.
    static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            result += buffer[..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Established TCP connections (IPv4 and IPv6) whose remote end is 127.0.0.1/::1 `port`.
    static func establishedConnections(toPort port: UInt16) -> Int {
        ["/proc/net/tcp", "/proc/net/tcp6"].reduce(0) { total, file in
            let text = read(file)
            return total
                + text.split(separator: "\n").dropFirst().filter { line in
                    let fields = line.split(separator: " ")
                    guard fields.count > 3, let remotePort = fields[2].split(separator: ":").last.flatMap({ UInt16($0, radix: 16) })
                    else { return false }
                    return remotePort == port && fields[3] == "01"
                }.count
        }
    }

    /// Connected sockets on the listening unix socket `path` (its accepted ends).
    static func connectedUnixSockets(path: String) -> Int {
        let text = read("/proc/net/unix")
        return text.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count >= 8 && fields[7] == path && fields[5] == "03"
        }.count
    }
}

// MARK: - Proving that nothing else called the backend

extension FaultStack {
    /// One worker and one backend call at a time: what the backend sees is in request order.
    static let oneAtATime = ["CROCANTE_WORKERS": "1", "CROCANTE_BACKEND_CONCURRENCY": "1"]

    /// Sends one valid logout with a fresh token, and waits until the backend has seen
    /// `previous + 1` requests, the last one for that token. With ``oneAtATime`` this proves that
    /// every request sent before made exactly `previous` backend calls: a call made for any of
    /// them would have reached the backend first.
    func expectNoOtherCall(after previous: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let token = Seal.tokens(1, "marker")[0]
        let answer = try logout(Seal.session(token))
        #expect(answer.status == 200, sourceLocation: sourceLocation)
        #expect(backendReaches(previous + 1), "backend saw \(backendRequests().count), expected \(previous + 1)", sourceLocation: sourceLocation)
        #expect(backendBearers.last == "Bearer \(token)", sourceLocation: sourceLocation)
    }
}
