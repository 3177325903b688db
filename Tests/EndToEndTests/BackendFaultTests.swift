import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whatever the backend does, the logout is the same 200 and never waits for it.
@Suite(.serialized)
struct BackendFaultTests {
    struct Fault: Sendable, CustomTestStringConvertible {
        let name: String
        /// Stand-in flags; nil: nothing listens (connection refused).
        let backend: [String]?
        let environment: [String: String]
        /// The backend requests it sees for one logout (at least this many when retried).
        let received: Int
        /// The responder's final totals for a final verdict; nil for a fault that is no verdict,
        /// which is retried until the stop and then, memory-only, counted lost.
        let outcome: ResponderTotals?
        /// The log line the outcome is reported with.
        let logLine: String

        var testDescription: String { name }
    }

    static let revoked = ResponderTotals(requests: 1, queued: 1, revoked: 1)
    static let rejected = ResponderTotals(requests: 1, queued: 1, rejected: 1)
    static let retried: ResponderTotals? = nil

    static let faults: [Fault] = [
        Fault(name: "fast 200", backend: [], environment: [:], received: 1, outcome: revoked, logLine: "revocation revoked"),
        Fault(
            name: "401", backend: ["--status", "401"], environment: [:], received: 1, outcome: rejected,
            logLine: "revocation rejected by the backend"),
        // No verdict: retried (issue 9), Retry-After honoured; the outage's first failure is logged once.
        Fault(
            name: "500", backend: ["--status", "500"], environment: [:], received: 1, outcome: retried,
            logLine: "reason=status 500"),
        Fault(
            name: "503 with Retry-After", backend: ["--status", "503", "--header", "Retry-After: 1"], environment: [:],
            received: 1, outcome: retried, logLine: "reason=status 503"),
        Fault(
            name: "connection refused", backend: nil, environment: [:], received: 0, outcome: retried,
            logLine: "revocations failing: the backend does not answer, retrying until it does"),
        // The whole-call deadline ends the call; the stand-in keeps the connection open forever.
        Fault(
            name: "blackhole", backend: ["--behavior", "blackhole"], environment: ["CROCANTE_BACKEND_TIMEOUT_MS": "300"],
            received: 1, outcome: retried, logLine: "reason=timeout"),
        // Stopped at once: the drain waits for the answer, 2 s later.
        Fault(
            name: "answers after 2 s", backend: ["--delay-ms", "2000"], environment: [:], received: 1, outcome: revoked,
            logLine: "revocation revoked"),
        // Redirects are not followed: one call, and a 3xx is no verdict.
        Fault(
            name: "302 redirect", backend: ["--status", "302", "--header", "Location: /elsewhere"], environment: [:],
            received: 1, outcome: retried, logLine: "reason=status 302"),
        Fault(
            name: "reset mid-response", backend: ["--behavior", "reset"], environment: [:], received: 1, outcome: retried,
            logLine: "revocations failing: the backend does not answer, retrying until it does"),
    ]

    /// 200, the cleared cookie and the body for every backend; then, at SIGTERM, a final verdict
    /// came from exactly one call, and anything else was retried until the stop and, with no
    /// spool, counted lost; each logged as documented.
    @Test(arguments: faults)
    func everyBackendFaultStillLogsOut(fault: Fault) throws {
        try withTestStack(.init(backend: fault.backend, environment: fault.environment)) { stack in
            let token = Seal.tokens(1, "fault")[0]
            let answer = try stack.logout(Seal.session(token))
            #expect(answer.status == 200)
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(answer.body == #"{"success":true}"#)
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stack.responder.stderr.contains(fault.logLine), "\(stack.responder.stderr)")
            if let outcome = fault.outcome {
                #expect(stopped.totals == outcome)
                #expect(stack.backendBearers == Array(repeating: "Bearer \(token)", count: fault.received))
            } else {
                let status = try #require(stack.responder.finalStatus)
                #expect(status["revocations_queued"] == 1 && status["revocations_lost"] == 1, "\(status)")
                #expect(status["revocations_revoked"] == 0 && status["revocations_rejected"] == 0, "\(status)")
                #expect((status["revocations_failed"] ?? 0) >= 1 && (status["revocations_retried"] ?? 0) >= 1, "\(status)")
                #expect(stack.backendBearers.count >= fault.received)
                #expect(Set(stack.backendBearers).isSubset(of: ["Bearer \(token)"]))
            }
        }
    }

    /// The answer reaches curl while the backend holds the revocation unanswered: the blackhole
    /// never answers and the call's deadline is a minute away, yet curl has its 200; afterwards
    /// the backend has the request on a connection that is still open, and no outcome is logged.
    @Test func theAnswerDoesNotWaitForABackendThatNeverAnswers() throws {
        let options = TestStack.Options(
            backend: ["--behavior", "blackhole"],
            environment: ["CROCANTE_BACKEND_TIMEOUT_MS": "60000", "CROCANTE_DRAIN_TIMEOUT_MS": "200"])
        try withTestStack(options) { stack in
            let token = Seal.tokens(1, "blackhole")[0]
            let (answer, _) = try stack.curl(headers: ["Cookie: crocante_session=\(try Seal.session(token))"])
            #expect(answer.status == 200 && answer.body == #"{"success":true}"#)
            #expect(answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(token)"])
            #expect(Harness.waitUntil { Proc.establishedConnections(toPort: stack.backendPort) >= 1 })
            #expect(!stack.responder.stderr.contains("revocation "), "an outcome was logged: \(stack.responder.stderr)")
            // Another logout is just as immediate while the first call hangs.
            #expect(try stack.logout(nil).status == 200)
            // At SIGTERM the drain deadline passes with the call unanswered: counted and logged as lost.
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 2, queued: 1, lost: 1))
            #expect(stack.responder.stderr.contains("revocations lost at shutdown"))
        }
    }

    /// Five logouts in a row against a backend that answers each call after 2 s: all five answers
    /// are in before the first revocation outcome, which comes afterwards.
    @Test func theAnswerDoesNotWaitForASlowBackend() throws {
        try withTestStack(.init(backend: ["--delay-ms", "2000"])) { stack in
            let tokens = Seal.tokens(5, "slow")
            for cookie in try Seal.sessions(tokens) {
                let (answer, _) = try stack.curl(headers: ["Cookie: crocante_session=\(cookie)"])
                #expect(answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            }
            #expect(!stack.responder.stderr.contains("revocation revoked"), "a revocation ended before the answers")
            #expect(stack.backendReaches(5))
            #expect(Harness.waitUntil { stack.responder.stderr.components(separatedBy: "revocation revoked").count - 1 == 5 })
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 5, queued: 5, revoked: 5))
            #expect(Set(stack.backendBearers) == Set(tokens.map { "Bearer \($0)" }))
        }
    }

    /// A full queue drops, counts and logs, and never delays an answer: with one call at a time
    /// held by a blackhole and room for one more, three of five sessions are dropped.
    @Test func aFullQueueDropsAndCountsButNeverDelaysTheAnswer() throws {
        let options = TestStack.Options(
            backend: ["--behavior", "blackhole"],
            environment: [
                "CROCANTE_QUEUE_CAPACITY": "1", "CROCANTE_BACKEND_CONCURRENCY": "1", "CROCANTE_WORKERS": "1",
                "CROCANTE_BACKEND_TIMEOUT_MS": "60000", "CROCANTE_DRAIN_TIMEOUT_MS": "200",
            ])
        try withTestStack(options) { stack in
            let tokens = Seal.tokens(5, "full")
            for cookie in try Seal.sessions(tokens) {
                let answer = try stack.logout(cookie)
                #expect(answer.status == 200 && answer.header("Set-Cookie") == Contract.clearedSecureCookie)
            }
            #expect(stack.backendReaches(1))
            #expect(stack.backendBearers == ["Bearer \(tokens[0])"])
            #expect(stack.responder.stderr.contains("revocation dropped: queue full or closed"))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 5, queued: 2, dropped: 3, lost: 2))
        }
    }

    /// When the drain deadline passes, the calls still running are counted as lost, and the
    /// log says so once. Their cancellation must not then be logged as a failure too: the log
    /// would count each of those tokens twice, once as lost and once as failed, while the
    /// final totals say failed=0.
    @Test func aRevocationLostAtShutdownIsNotAlsoLoggedAsFailed() throws {
        let options = TestStack.Options(
            backend: ["--behavior", "blackhole"],
            environment: ["CROCANTE_BACKEND_TIMEOUT_MS": "60000", "CROCANTE_DRAIN_TIMEOUT_MS": "200"])
        try withTestStack(options) { stack in
            for cookie in try Seal.sessions(Seal.tokens(3, "lost")) { #expect(try stack.logout(cookie).status == 200) }
            #expect(stack.backendReaches(3))
            let stopped = stack.stopResponder()
            #expect(stopped.status == 0)
            #expect(stopped.totals == ResponderTotals(requests: 3, queued: 3, lost: 3))
            let failedLines = stack.responder.stderr.split(separator: "\n").filter { $0.hasSuffix("] revocation failed: the token may still be alive") }
            #expect(failedLines.count == stopped.totals?.failed, "late failure lines for lost revocations:\n\(failedLines.joined(separator: "\n"))")
        }
    }
}
