import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10's attacks on the running binary: hostile FastCGI records, slow peers, other roles,
/// refused peers, configurations that used to crash. Each asserts the process stays alive, nginx
/// logouts are still answered during the attack, RSS stays bounded and stop stays bounded.
///
/// Self-contained on purpose (its own raw FastCGI client and a small stack on `Harness`), so that
/// it moves to the shared test stack in one piece.
@Suite(.serialized)
struct HardeningTests {
    @Test(arguments: [false, true])
    func hostileRecordsAreRefusedWithoutGrowingMemory(overTCP: Bool) throws {
        let stack = try HardeningStack(overTCP: overTCP)
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
        #expect(try stack.logout().status == 200)
        let status = try stack.status()
        #expect(status["invalid_requests"] == HostileRecords.all.count - 2 + 4, "\(status)")
        #expect(status["unknown_roles"] == 2, "\(status)")
        #expect(stack.responder.stderr.contains("connection closed: invalid FastCGI request"))
        let exit = stack.stopResponder(within: .seconds(10))
        #expect(exit == 0)
    }

    /// Silent and dripping peers, more than there are workers: each is closed at the request
    /// deadline, nginx logouts are answered meanwhile, and SIGTERM in the middle stops in bound.
    @Test func slowPeersHoldNoWorkerBeyondTheRequestDeadline() throws {
        let stack = try HardeningStack(overTCP: false, environment: ["CROCANTE_WORKERS": "2", "CROCANTE_REQUEST_TIMEOUT_MS": "1000"])
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
            let answer = try stack.logout()
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

    @Test func tcpClientsOutsideTheAllowlistAreRefused() throws {
        let stack = try HardeningStack(overTCP: true, environment: ["CROCANTE_ALLOWED_CLIENTS": "127.0.0.1/32, ::1"])
        // From 127.0.0.2 (loopback is a /8 on Linux): closed before a byte is read.
        let outsider = try stack.connect(from: "127.0.0.2")
        defer { close(outsider) }
        try RawSocket.writeAll(outsider, HostileRecords.logout, ignoringReset: true)
        let answer = RawSocket.readUntilClosed(outsider, within: .seconds(5))
        #expect(answer.closed && answer.bytes.isEmpty)
        // nginx, from 127.0.0.1, is served.
        #expect(try stack.logout().status == 200)
        #expect(try stack.status()["peers_refused"] == 1)
        #expect(stack.responder.stderr.contains("connection refused: peer not in the allowlist"))
        #expect(stack.responder.stderr.contains("peer=127.0.0.2"))
    }

    @Test func unixPeersOutsideTheAllowlistAreRefused() throws {
        // The test runs as some uid; allow only another one, then only ours.
        let other = getuid() == 0 ? 4242 : 0
        let refusing = try HardeningStack(overTCP: false, environment: ["CROCANTE_ALLOWED_PEERS": "uid:\(other),gid:\(other)"])
        let fd = try refusing.connect()
        defer { close(fd) }
        try RawSocket.writeAll(fd, HostileRecords.logout, ignoringReset: true)
        #expect(RawSocket.readUntilClosed(fd, within: .seconds(5)).bytes.isEmpty)
        #expect(refusing.responder.stderr.contains("peer=uid \(getuid()) gid \(getgid())"))

        let admitting = try HardeningStack(overTCP: false, environment: ["CROCANTE_ALLOWED_PEERS": "uid:\(getuid())"])
        let served = try admitting.connect()
        defer { close(served) }
        try RawSocket.writeAll(served, HostileRecords.logout, ignoringReset: true)
        let answer = String(decoding: RawSocket.readUntilClosed(served, within: .seconds(5)).bytes, as: UTF8.self)
        #expect(answer.contains("Status: 200 OK"))
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
        ("get values", record(type: 9, id: 0, pair("FCGI_MAX_CONNS", ""))),
        ("get values, huge name", record(type: 9, id: 0, long(0x7FFF_FFF0) + [1])),
        ("second begin", begin() + begin(id: 2)),
        ("stdin before the params end", begin() + record(type: 5, [0x41])),
        ("version 2", [2] + begin().dropFirst()),
        ("params of another request", begin() + record(type: 4, id: 2, params)),
        ("not FastCGI", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
    ]
}

// MARK: - A small stack: the responder, nginx in front, no backend

final class HardeningStack {
    let directory: URL
    let fastcgiAddress: String
    let socketPath: String
    let tcpPort: UInt16
    let nginxPort: UInt16
    let responder: ManagedProcess
    let nginx: ManagedProcess

    init(overTCP: Bool, environment: [String: String] = [:]) throws {
        directory = try Harness.temporaryDirectory()
        socketPath = directory.appendingPathComponent("fcgi.sock").path
        tcpPort = try Harness.freePort()
        fastcgiAddress = overTCP ? "127.0.0.1:\(tcpPort)" : "unix:\(socketPath)"
        nginxPort = try Harness.freePort()
        var settings = [
            "SESSION_SECRET": Harness.secret, "API_GATEWAY": "http://127.0.0.1:9", "EP_AUTH_LOGOUT": "auth/logout",
            "CROCANTE_LISTEN": fastcgiAddress, "CROCANTE_SOCKET_MODE": "0666", "CROCANTE_WORKERS": "4",
            "CROCANTE_DRAIN_TIMEOUT_MS": "3000", "CROCANTE_REQUEST_TIMEOUT_MS": "1000",
        ]
        settings.merge(environment) { $1 }
        let responder = try ManagedProcess(
            Harness.product("crocante-logout"), [], environment: settings, logDirectory: directory, name: "responder")
        guard Harness.waitUntil({ responder.stderr.contains(" ready") || !responder.process.isRunning }), responder.process.isRunning
        else { throw HarnessError("responder did not start: \(responder.stderr)") }
        self.responder = responder
        nginx = try Harness.startNginx(
            in: directory, site: try Harness.nginxSite(fastcgiAddress: fastcgiAddress, port: nginxPort), port: nginxPort)
    }

    deinit {
        responder.stop()
        nginx.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func connect(from source: String? = nil) throws -> Int32 {
        fastcgiAddress.hasPrefix("unix:")
            ? try RawSocket.connectUnix(socketPath) : try RawSocket.connectTCP(port: tcpPort, from: source)
    }

    func logout() throws -> Stack.Answer {
        try Harness.curl(port: nginxPort, "POST", path: "/api/auth/logout", headers: [], extra: []).answer
    }

    /// The status page's numbers, through nginx.
    func status() throws -> [String: Int] {
        let answer = try Harness.curl(port: nginxPort, "GET", path: "/crocante-logout/status", headers: [], extra: []).answer
        let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] ?? [:]
        return object.compactMapValues { $0 as? Int }
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
    static func connectUnix(_ path: String) throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { close(fd); throw HarnessError("connect \(path): errno \(errno)") }
        return fd
    }

    static func connectTCP(port: UInt16, from source: String?) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        func inet(_ host: String, _ port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr(host)
            return address
        }
        if let source {
            var local = inet(source, 0)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { close(fd); throw HarnessError("bind \(source): errno \(errno)") }
        }
        var address = inet("127.0.0.1", port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw HarnessError("connect 127.0.0.1:\(port): errno \(errno)") }
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
