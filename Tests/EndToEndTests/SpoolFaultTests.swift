import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A spool that cannot take more (its size limit, a read-only directory, a full disk) never
/// fails a logout: the answer is still 200, and the refusal is counted and logged.
///
/// As root, `chmod` does not stop writes, so the read-only and full filesystems are tmpfs
/// mounts made inside a private mount namespace of the responder's own (`unshare -m`), never
/// on the host's mount table; they vanish with the responder.
@Suite(.serialized)
struct SpoolFaultTests {
    /// Big tokens, so a few hundred logouts fill a megabyte.
    static func bigTokens(_ count: Int, _ label: String) -> [String] {
        Seal.tokens(count, label).map { $0 + "-" + String(repeating: "x", count: 1400) }
    }

    /// Runs the responder in a private mount namespace with a tmpfs of `size` over `spool`,
    /// mode 0700 as the responder requires; nil when this machine cannot.
    static func tmpfsLauncher(spool: String, size: String) -> [String]? {
        let probe = try? Harness.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/true"])
        guard probe?.status == 0 else { return nil }
        return [
            "/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
            #"mount -t tmpfs -o size=\#(size),mode=0700 crocante-test "\#(spool)" && exec "$0" "$@""#,
        ]
    }

    /// The responder's view of a path in its own mount namespace.
    static func inNamespace(of responder: Responder, _ path: String) -> String { "/proc/\(responder.pid)/root\(path)" }

    static let canMount = tmpfsLauncher(spool: "/", size: "1k") != nil

    @Test func aFullSpoolStillAnswers200AndCountsIt() throws {
        let options = TestStack.Options(
            backend: nil, environment: TestStack.fastRetries.merging(["CROCANTE_SPOOL_MAX_BYTES": "1048576"]) { $1 },
            startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            try stack.startResponder(["CROCANTE_SPOOL_DIR": spool])
            let tokens = Self.bigTokens(900, "full")
            let sender = TokenSender(port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens))
            sender.start(threads: 4)
            _ = sender.finish()
            let statuses = sender.tally
            let status = try stack.status()
            stack.expectNoSecretsInClear(inSpool: spool)
            try stack.startBackend(name: "up")
            _ = stack.waitForDelivery(of: tokens, timeout: .seconds(20))
            let delivered = stack.deliveredTokens().intersection(tokens).count
            #expect(stack.stopResponder().status == 0)
            let totals = try #require(stack.responder.finalStatus)
            print("""
                spool/full: answers \(statuses); spool_full \(status["spool_full"] ?? -1), spool_bytes \(status["spool_bytes"] ?? -1), \
                dropped \(totals["revocations_dropped"] ?? -1); delivered \(delivered)/\(tokens.count)
                """)
            #expect(statuses == [200: tokens.count])
            #expect((status["spool_full"] ?? 0) > 0, "\(status)")
            #expect(stack.responder.stderr.contains("spool full"), "the full spool was not logged")
            // Every token is either delivered or counted dropped: none vanishes silently.
            #expect(delivered + (totals["revocations_dropped"] ?? 0) == tokens.count)
        }
    }

    @Test(.enabled(if: canMount, "unshare -m (a private mount namespace) is not available here"))
    func aFullDiskStillAnswers200AndTheTokensAreDelivered() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            let launcher = try #require(Self.tmpfsLauncher(spool: spool, size: "64k"))
            let responder = try stack.startResponder(["CROCANTE_SPOOL_DIR": spool], launcher: launcher)
            let tokens = Self.bigTokens(100, "diskfull")
            var statuses: [Int: Int] = [:]
            for cookie in try Seal.sessions(tokens) { statuses[try stack.logout(cookie).status, default: 0] += 1 }
            let status = try stack.status()
            stack.expectNoSecretsInClear(inSpool: Self.inNamespace(of: responder, spool))
            try stack.startBackend(name: "up")
            let missing = stack.waitForDelivery(of: tokens)
            #expect(stack.stopResponder().status == 0)
            print("""
                spool/disk full: answers \(statuses); spool_write_errors \(status["spool_write_errors"] ?? -1), \
                spool_full \(status["spool_full"] ?? -1); delivered \(tokens.count - missing.count)/\(tokens.count)
                """)
            #expect(statuses == [200: tokens.count])
            #expect((status["spool_write_errors"] ?? 0) + (status["spool_full"] ?? 0) > 0, "\(status)")
            #expect(stack.responder.stderr.contains("spool append failed"), "the full disk was not logged")
            // A token the spool refused went to the memory queue: the same process delivers it.
            #expect(missing.isEmpty, "\(missing.count) tokens never delivered")
        }
    }

    /// The spool directory turns read-only under the running responder. `mount -o remount,ro`
    /// is refused (EBUSY) while the responder holds its segment open for writing, so a read-only
    /// bind mount goes over the directory instead: the open segment stays writable (as it would),
    /// and the next segment (after 4 MiB of records) cannot be created.
    @Test(.enabled(if: canMount, "unshare -m (a private mount namespace) is not available here"))
    func aReadOnlySpoolStillAnswers200AndTheTokensAreDelivered() throws {
        let options = TestStack.Options(backend: nil, environment: TestStack.fastRetries, startsResponder: false)
        try withTestStack(options) { stack in
            let spool = try stack.makeSpoolDirectory()
            let launcher = try #require(Self.tmpfsLauncher(spool: spool, size: "16m"))
            let responder = try stack.startResponder(["CROCANTE_SPOOL_DIR": spool], launcher: launcher)
            let before = Seal.tokens(10, "writable")
            for cookie in try Seal.sessions(before) { #expect(try stack.logout(cookie).status == 200) }
            let readOnly = try Harness.run(
                "/usr/bin/nsenter",
                ["-t", "\(responder.pid)", "-m", "/bin/sh", "-c", #"mount --bind "$0" "$0" && mount -o remount,bind,ro "$0""#, spool])
            try #require(readOnly.status == 0, "read-only bind mount failed: \(readOnly.stderr)")
            // 5 KB tokens: about 850 fill the 4 MiB segment, so a new one must be created.
            let after = Seal.tokens(1000, "readonly").map { $0 + "-" + String(repeating: "y", count: 5000) }
            let sender = TokenSender(port: stack.nginxPort, tokens: after, cookies: try Seal.sessions(after))
            sender.start(threads: 4)
            _ = sender.finish()
            let statuses = sender.tally
            let status = try stack.status()
            stack.expectNoSecretsInClear(inSpool: Self.inNamespace(of: responder, spool))
            try stack.startBackend(name: "up")
            let tokens = before + after
            let missing = stack.waitForDelivery(of: tokens)
            #expect(stack.stopResponder().status == 0)
            print("""
                spool/read-only: answers \(statuses); spool_write_errors \(status["spool_write_errors"] ?? -1), \
                spool_pending_records \(status["spool_pending_records"] ?? -1); delivered \(tokens.count - missing.count)/\(tokens.count)
                """)
            #expect(statuses == [200: after.count])
            #expect((status["spool_write_errors"] ?? 0) > 0, "\(status)")
            #expect(stack.responder.stderr.contains("spool append failed"), "the read-only spool was not logged")
            #expect(missing.isEmpty, "\(missing.count) tokens never delivered")
        }
    }
}
