import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The libfcgi traps the FastCGI layer works around, each shown on the running binary.
@Suite(.serialized)
struct FastCGILayerTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func listensOnExactlyOneTCPAddress(host: String) throws {
        try withTestStack(.init(listen: .tcp(host: host))) { stack throws in
            #expect(try stack.logout(nil).status == 200)
            #expect(stack.responder.stderr.contains("listen=\(stack.fastcgiAddress)"))
        }
    }

    @Test(arguments: [false, true])
    func takesAnInheritedSocket(asStandardInput: Bool) throws {
        try withTestStack(.init(listen: asStandardInput ? .standardInputSocket : .systemdSocket)) { stack throws in
            #expect(try stack.logout(nil).status == 200)
            #expect(stack.responder.stderr.contains(asStandardInput ? "listen=inherited fd 0" : "listen=systemd fd 3"))
            #expect(stack.stopResponder().status == 0)
            // The socket belongs to the parent: still there, still listening.
            #expect(FileManager.default.fileExists(atPath: stack.socketPath))
        }
    }

    /// Without CROCANTE_SOCKET_MODE the socket is 0660.
    @Test func replacesAStaleSocketFileWithTheConfiguredMode() throws {
        try withTestStack(.init(unsetEnvironment: ["CROCANTE_SOCKET_MODE"], startsResponder: false)) { stack in
            let path = stack.socketPath
            close(try Socket.listeningUnix(at: path))  // a socket file nobody listens on any more

            try stack.startResponder()
            var status = stat()
            #expect(lstat(path, &status) == 0)
            #expect(status.st_mode & 0o777 == 0o660)
            #expect(status.st_mode & S_IFMT == S_IFSOCK)

            // A second responder must not take over a socket someone is listening on.
            let second = try Harness.run(Harness.product("crocante-logout").path, [], environment: stack.responderEnvironment())
            #expect(second.status == 71)
            #expect(second.stderr.contains("in use by a running process"))

            #expect(stack.stopResponder().status == 0)
            #expect(!FileManager.default.fileExists(atPath: path), "an owned socket file is removed at stop")
        }
    }

    /// HAProxy's `option get-values` on one connection: `FCGI_GET_VALUES` is answered at once (it
    /// waits for the answer before it sends the request) with libfcgi's own values, one request at
    /// a time and no multiplexing, byte for byte; then the request is served exactly as on a
    /// connection of its own, and its token revoked.
    @Test func answersGetValuesThenServesTheRequestOnTheSameConnection() throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let tokens = Seal.tokens(2, "getvalues")
            let fd = try Socket.connectUnix(path: stack.socketPath)
            defer { close(fd) }
            try Socket.writeAll(fd, FastCGIClient.getValues(["FCGI_MAX_REQS", "FCGI_MPXS_CONNS"]))
            let result = [13, 1] + Array("FCGI_MAX_REQS1".utf8) + [15, 1] + Array("FCGI_MPXS_CONNS0".utf8)
            #expect(try FastCGIClient.readRecord(fd) == [1, 10, 0, 0, 0, 34, 6, 0] + result + [0, 0, 0, 0, 0, 0])
            try Socket.writeAll(fd, FastCGIClient.request(cookie: try Seal.session(tokens[0])))
            let afterTheQuestion = try Socket.readToEnd(fd)

            let alone = try Socket.connectUnix(path: stack.socketPath)
            defer { close(alone) }
            try Socket.writeAll(alone, FastCGIClient.request(cookie: try Seal.session(tokens[1])))
            #expect(afterTheQuestion == (try Socket.readToEnd(alone)))
            let cgi = String(decoding: FastCGIClient.stdout(of: afterTheQuestion), as: UTF8.self)
            #expect(cgi == Self.contractAnswer, "\(cgi)")
            #expect(afterTheQuestion.suffix(16) == [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "FCGI_END_REQUEST, complete")
            #expect(stack.backendReaches(2))
            #expect(stack.backendBearers == tokens.map { "Bearer \($0)" })
            let status = try stack.status()
            #expect(status["invalid_requests"] == 0 && status["closed_early"] == 0, "\(status)")
        }
    }

    /// A question alone, then a close, is no refusal; an unknown management type is answered
    /// `FCGI_UNKNOWN_TYPE`; a ninth management record before the request closes the connection.
    @Test func managementRecordsAreAnsweredAndBounded() throws {
        try withTestStack(.init(environment: TestStack.oneAtATime)) { stack in
            let question = FastCGIClient.getValues(["FCGI_MPXS_CONNS"])
            let answer = [1, 10, 0, 0, 0, 18, 6, 0, 15, 1] + Array("FCGI_MPXS_CONNS0".utf8) + [0, 0, 0, 0, 0, 0]
            let asking = try Socket.connectUnix(path: stack.socketPath)
            try Socket.writeAll(asking, question)
            #expect(try FastCGIClient.readRecord(asking) == answer)
            close(asking)

            let unknown = try Socket.connectUnix(path: stack.socketPath)
            defer { close(unknown) }
            try Socket.writeAll(unknown, [1, 12, 0, 0, 0, 3, 5, 0, 1, 2, 3, 0, 0, 0, 0, 0] + FastCGIClient.request(cookie: nil))
            #expect(try FastCGIClient.readRecord(unknown) == [1, 11, 0, 0, 0, 8, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0])
            #expect(String(decoding: FastCGIClient.stdout(of: try Socket.readToEnd(unknown)), as: UTF8.self) == Self.contractAnswer)

            let flooding = try Socket.connectUnix(path: stack.socketPath)
            defer { close(flooding) }
            try Socket.writeAll(flooding, [[UInt8]](repeating: question, count: 9).flatMap { $0 } + FastCGIClient.request(cookie: nil))
            let flooded = RawSocket.readUntilClosed(flooding, within: .seconds(5))
            #expect(flooded.closed && flooded.bytes == [[UInt8]](repeating: answer, count: 8).flatMap { $0 })
            let status = try stack.status()
            #expect(status["invalid_requests"] == 1 && status["closed_early"] == 0, "\(status)")
            #expect(stack.responder.stderr.contains("reason=management_count"))
        }
    }

    /// The logout's CGI answer (`APP_ENV=production`, the stack's default).
    static let contractAnswer = "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\nCache-Control: no-store\r\n"
        + "Set-Cookie: \(Contract.clearedSecureCookie)\r\n\r\n{\"success\":true}"

    /// Out of file descriptors, accept fails with EMFILE: the workers log it, back off and keep
    /// going, and serve again as soon as descriptors are free.
    @Test func acceptErrorsAreRetriedNotFatal() throws {
        try withTestStack(.init(environment: ["CROCANTE_WORKERS": "2"])) { stack in
            let pid = stack.responder.pid
            let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
            let limits = try Harness.run("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile", "--noheadings", "--output=SOFT,HARD"])
            let (soft, hard) = try #require({ () -> (String, String)? in
                let fields = limits.stdout.split(separator: " ").map(String.init)
                return fields.count == 2 ? (fields[0], fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            }())
            // No descriptor left for a new connection (the soft limit only, so it can be raised again).
            let limited = try Harness.run("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=\(open):\(hard)"])
            try #require(limited.status == 0, "\(limited.stderr)")

            let load = LoadClient(port: stack.nginxPort, cookie: nil)
            load.start(connections: 4)
            #expect(Harness.waitUntil { stack.responder.stderr.contains("accept failed, retrying") })
            let raised = try Harness.run("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=\(soft):\(hard)"])
            try #require(raised.status == 0)
            let before = load.current.statuses[200, default: 0]
            #expect(Harness.waitUntil { load.current.statuses[200, default: 0] >= before + 100 })
            _ = load.stop()
            #expect(stack.responder.stderr.contains("Too many open files"))
            #expect(stack.stopResponder().status == 0)
        }
    }
}
