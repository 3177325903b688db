import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10's attacks on the running binary: hostile FastCGI records, slow peers, other roles,
/// refused peers, configurations that used to crash. Each asserts the process stays alive, nginx
/// logouts are still answered during the attack, RSS stays bounded and stop stays bounded.
///
/// On the shared test stack with no backend; the raw records are written by hand here.
@Suite(.serialized)
struct HardeningTests {
    @Test(arguments: [false, true])
    func hostileRecordsAreRefusedWithoutGrowingMemory(overTCP: Bool) throws {
        try withHardeningStack(overTCP: overTCP) { stack in
        let baseline = try #require(stack.residentKiB())
        for (name, bytes) in HostileRecords.all {
            let fd = try stack.connect()
            defer { close(fd) }
            try RawSocket.writeAll(fd, bytes, ignoringReset: true)
            let answer = RawSocket.readUntilClosed(fd, within: .seconds(5))
            #expect(answer.closed, "\(name): the connection is closed at once")
            #expect(answer.bytes.isEmpty || name.hasPrefix("role"), "\(name): no answer but to a role")
            if name.hasPrefix("role") {
                #expect(answer.bytes == [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], "\(name): FCGI_UNKNOWN_ROLE")
            }
            #expect(stack.responder.process.isRunning, "\(name) stopped the process")
        }
        // The 2 GiB allocation, four at once, as in the issue.
        let floods = try (0..<4).map { _ in try stack.connect() }
        for fd in floods { try RawSocket.writeAll(fd, HostileRecords.twoGiB, ignoringReset: true) }
        for fd in floods {
            #expect(RawSocket.readUntilClosed(fd, within: .seconds(5)).closed)
            close(fd)
        }
        #expect(stack.responder.process.isRunning)
        let resident = try #require(stack.residentKiB())
        #expect(resident < baseline + 64 * 1024, "RSS went from \(baseline) KiB to \(resident) KiB")
        #expect(try stack.logout(nil).status == 200)
        let status = try stack.status()
        #expect(status["invalid_requests"] == HostileRecords.all.count - 2 + 4, "\(status)")
        #expect(status["unknown_roles"] == 2, "\(status)")
        #expect(stack.responder.stderr.contains("connection closed: invalid FastCGI request"))
        let exit = stack.stopResponder(within: .seconds(10))
        #expect(exit == 0)
        }
    }

    /// Silent and dripping peers, more than there are workers: each is closed at the request
    /// deadline, nginx logouts are answered meanwhile, and SIGTERM in the middle stops in bound.
    @Test func slowPeersHoldNoWorkerBeyondTheRequestDeadline() throws {
        try withHardeningStack(overTCP: false, environment: ["CROCANTE_WORKERS": "2", "CROCANTE_REQUEST_TIMEOUT_MS": "1000"]) { stack in
        let silent = try (0..<4).map { _ in try stack.connect() }
        let dripping = try (0..<4).map { _ in try stack.connect() }
        let request = HostileRecords.logout
        let stopDripping = DispatchSemaphore(value: 0)
        let dripper = Thread {
            var index = 0
            while stopDripping.wait(timeout: .now() + .milliseconds(300)) == .timedOut, index < request.count {
                for fd in dripping { _ = request[index...index].withUnsafeBytes { send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) } }
                index += 1
            }
        }
        dripper.start()
        for _ in 0..<6 {
            let answer = try stack.logout(nil)
            #expect(answer.status == 200 && answer.header("Set-Cookie") != nil, "a logout during the attack")
        }
        for fd in silent + dripping {
            #expect(RawSocket.readUntilClosed(fd, within: .seconds(5)).closed, "closed at the request deadline")
        }
        let status = try stack.status()
        #expect((status["timed_out"] ?? 0) >= 8, "\(status)")

        // Again, and SIGTERM while they drip: drain (3 s) plus a small margin, whatever they do.
        let more = try (0..<4).map { _ in try stack.connect() }
        let exit = stack.stopResponder(within: .seconds(3 + 5))
        #expect(exit == 0)
        stopDripping.signal()
        for fd in silent + dripping + more { close(fd) }
        }
    }

    /// A backend that answers 200 and then streams a body without end (gigabytes a second on
    /// loopback): only the status matters, the body is discarded as it comes, so the responder's
    /// memory stays flat while the call runs into its deadline, and logouts are answered meanwhile.
    @Test func anEndlessBackendBodyDoesNotGrowMemory() throws {
        let options = TestStack.Options(backend: ["--behavior", "endless"], environment: ["CROCANTE_BACKEND_TIMEOUT_MS": "3000"])
        try withTestStack(options) { stack in
            let baseline = try #require(stack.residentKiB())
            #expect(try stack.logout(Seal.session(Seal.tokens(1, "endless")[0])).status == 200)
            #expect(stack.backendReaches(1))
            var peak = baseline
            for _ in 0..<25 {
                Thread.sleep(forTimeInterval: 0.1)
                peak = max(peak, stack.residentKiB() ?? peak)
                #expect(try stack.logout(nil).status == 200)
            }
            #expect(stack.responder.isRunning)
            #expect(peak < baseline + 64 * 1024, "RSS went from \(baseline) KiB to \(peak) KiB")
            #expect(stack.stopResponder().status == 0)
        }
    }

    @Test func tcpClientsOutsideTheAllowlistAreRefused() throws {
        try withHardeningStack(overTCP: true, environment: ["CROCANTE_ALLOWED_CLIENTS": "127.0.0.1/32, ::1"]) { stack in
        // From 127.0.0.2 (loopback is a /8 on Linux): closed before a byte is read.
        let outsider = try stack.connect(from: "127.0.0.2")
        defer { close(outsider) }
        try RawSocket.writeAll(outsider, HostileRecords.logout, ignoringReset: true)
        let answer = RawSocket.readUntilClosed(outsider, within: .seconds(5))
        #expect(answer.closed && answer.bytes.isEmpty)
        // nginx, from 127.0.0.1, is served.
        #expect(try stack.logout(nil).status == 200)
        #expect(try stack.status()["peers_refused"] == 1)
        #expect(stack.responder.stderr.contains("connection refused: peer not in the allowlist"))
        #expect(stack.responder.stderr.contains("peer=127.0.0.2"))
        }
    }

    @Test func unixPeersOutsideTheAllowlistAreRefused() throws {
        // The test runs as some uid; allow only another one, then only ours.
        let other = getuid() == 0 ? 4242 : 0
        try withHardeningStack(overTCP: false, environment: ["CROCANTE_ALLOWED_PEERS": "uid:\(other),gid:\(other)"]) { refusing in
            let fd = try refusing.connect()
            defer { close(fd) }
            try RawSocket.writeAll(fd, HostileRecords.logout, ignoringReset: true)
            #expect(RawSocket.readUntilClosed(fd, within: .seconds(5)).bytes.isEmpty)
            #expect(refusing.responder.stderr.contains("peer=uid \(getuid()) gid \(getgid())"))
        }
        try withHardeningStack(overTCP: false, environment: ["CROCANTE_ALLOWED_PEERS": "uid:\(getuid())"]) { admitting in
            let served = try admitting.connect()
            defer { close(served) }
            try RawSocket.writeAll(served, HostileRecords.logout, ignoringReset: true)
            let answer = String(decoding: RawSocket.readUntilClosed(served, within: .seconds(5)).bytes, as: UTF8.self)
            #expect(answer.contains("Status: 200 OK"))
        }
    }

    /// Values that passed `check-config` and then crashed or misled: both `check-config` and
    /// `serve` refuse them with one line naming the setting, and exit 78.
    @Test(arguments: [
        ("API_GATEWAY", "http://127.0.0.1:65536"),
        ("API_GATEWAY", "http://user:pw@127.0.0.1:8080"),
        ("API_GATEWAY", "http://api.example.com/#frag"),
        ("API_GATEWAY", "http://999.1.1.1"),
        ("EP_AUTH_LOGOUT", "../../admin/purge"),
        ("EP_AUTH_LOGOUT", "%2e%2e/admin"),
        ("EP_AUTH_LOGOUT", "http://evil.example/x"),
        ("CROCANTE_ALLOWED_CLIENTS", "10.0.0.0/33"),
        ("CROCANTE_ALLOWED_PEERS", "www-data"),
        ("CROCANTE_REQUEST_TIMEOUT_MS", "0"),
    ])
    func startUpRefusesWhatWouldCrashOrMislead(name: String, value: String) throws {
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = [
            "SESSION_SECRET": Harness.secret, "API_GATEWAY": "http://127.0.0.1:9", "EP_AUTH_LOGOUT": "auth/logout",
            "CROCANTE_LISTEN": "unix:\(directory.path)/fcgi.sock",
        ]
        environment[name] = value
        for arguments in [["check-config"], ["serve"]] {
            let result = try Harness.run(Harness.product("crocante-logout").path, arguments, environment: environment)
            #expect(result.status == 78, "\(arguments) with \(name)=\(value): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("\(name) is invalid"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/fcgi.sock"))
        }
    }
}

// MARK: - The records

enum HostileRecords {
    static func header(type: UInt8, id: UInt16 = 1, contentLength: Int, padding: UInt8 = 0, version: UInt8 = 1) -> [UInt8] {
        [version, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(contentLength >> 8), UInt8(contentLength & 0xFF), padding, 0]
    }

    static func record(type: UInt8, id: UInt16 = 1, _ content: [UInt8]) -> [UInt8] {
        header(type: type, id: id, contentLength: content.count) + content
    }

    static func begin(role: UInt16 = 1, id: UInt16 = 1) -> [UInt8] {
        record(type: 1, id: id, [UInt8(role >> 8), UInt8(role & 0xFF), 0, 0, 0, 0, 0, 0])
    }

    static func long(_ value: UInt32) -> [UInt8] {
        [UInt8((value >> 24) & 0x7F) | 0x80, UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func pair(_ name: String, _ value: String) -> [UInt8] {
        [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
    }

    static let params = pair("REQUEST_METHOD", "POST") + pair("DOCUMENT_URI", "/api/auth/logout")
    /// A whole logout as nginx would send it.
    static let logout = begin() + record(type: 4, params) + header(type: 4, contentLength: 0) + header(type: 5, contentLength: 0)
    /// Name length 0x40000000, value length 0x3FFFFFFD: 2 GiB allocated by libfcgi before.
    static let twoGiB = begin() + header(type: 4, contentLength: 4096) + long(0x4000_0000) + long(0x3FFF_FFFD) + [UInt8](repeating: 0x41, count: 4088)

    /// Every hostile opening, by name; the `role` ones are answered `FCGI_UNKNOWN_ROLE`.
    static let all: [(String, [UInt8])] = [
        ("name 0x7FFFFFF0 (SIGABRT before)", begin() + header(type: 4, contentLength: 4096) + long(0x7FFF_FFF0) + [14] + [UInt8](repeating: 0x41, count: 64)),
        ("value 0x7FFFFFFF", begin() + header(type: 4, contentLength: 4096) + [4] + long(0x7FFF_FFFF) + Array("NAME".utf8)),
        ("role authorizer", begin(role: 2) + record(type: 4, params) + header(type: 4, contentLength: 0)),
        ("role filter", begin(role: 3) + record(type: 4, params) + header(type: 4, contentLength: 0)),
        // Before the request a management record is answered (FastCGILayerTests); inside one it is refused.
        ("get values inside a request", begin() + record(type: 9, id: 0, pair("FCGI_MAX_CONNS", ""))),
        ("get values, huge name", record(type: 9, id: 0, long(0x7FFF_FFF0) + [1])),
        ("second begin", begin() + begin(id: 2)),
        ("stdin before the params end", begin() + record(type: 5, [0x41])),
        ("version 2", [2] + begin().dropFirst()),
        ("params of another request", begin() + record(type: 4, id: 2, params)),
        ("not FastCGI", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
    ]
}

// MARK: - The shared test stack with no backend, and what these tests need of it

/// A `TestStack` with nothing listening on the backend port and a 1 s request deadline.
func withHardeningStack(overTCP: Bool, environment: [String: String] = [:], _ body: (TestStack) throws -> Void) throws {
    var settings = ["CROCANTE_REQUEST_TIMEOUT_MS": "1000"]
    settings.merge(environment) { $1 }
    try withTestStack(.init(backend: nil, environment: settings, listen: overTCP ? .tcp(host: "127.0.0.1") : .unix), body)
}

extension TestStack {
    /// A raw connection to the responder's FastCGI socket, over TCP from `source` if given.
    func connect(from source: String? = nil) throws -> Int32 {
        guard fastcgiAddress.hasPrefix("unix:") else {
            let port = try #require(fastcgiAddress.split(separator: ":").last.flatMap { UInt16($0) })
            return try RawSocket.connectTCP(port: port, from: source)
        }
        return try Socket.connectUnix(path: socketPath)
    }

    /// `VmRSS` of the responder, in KiB.
    func residentKiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(responder.pid)/status", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
    }

    /// SIGTERM; the exit status if it stopped within `bound`, else nil.
    func stopResponder(within bound: Duration) -> Int32? {
        responder.send(SIGTERM)
        return responder.waitForExit(timeout: bound)
    }
}

enum RawSocket {
    /// A TCP connection to 127.0.0.1:`port`, bound first to `source` (another loopback address) if given.
    static func connectTCP(port: UInt16, from source: String?) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            guard Socket.withSockaddr(Socket.inet(source, port: 0), { bind(fd, $0, $1) }) == 0 else {
                close(fd)
                throw HarnessError("bind \(source): errno \(errno)")
            }
        }
        guard Socket.withSockaddr(Socket.inet(port: port), { Glibc.connect(fd, $0, $1) }) == 0 else {
            close(fd)
            throw HarnessError("connect 127.0.0.1:\(port): errno \(errno)")
        }
        return fd
    }

    /// Sends everything; a peer that closes or resets first (it refused us) is not an error
    /// when `ignoringReset`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], ignoringReset: Bool) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 {
                if ignoringReset && (errno == EPIPE || errno == ECONNRESET) { return }
                throw HarnessError("send: errno \(errno)")
            }
            offset += written
        }
    }

    /// What the peer sends until it closes (or resets), within `bound`.
    static func readUntilClosed(_ fd: Int32, within bound: Duration) -> (bytes: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + bound
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) >= 0 else { return (bytes, true) }
            if entry.revents == 0 { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 { bytes += buffer[..<count]; continue }
            if count == 0 || errno == ECONNRESET { return (bytes, true) }
        }
        return (bytes, false)
    }
}
