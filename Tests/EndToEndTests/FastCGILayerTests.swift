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
