import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three responders sharing one PostgreSQL outbox (CROCANTE_OUTBOX) behind nginx, the database
/// started by the test on loopback: a host killed for good, a database restarted, claims racing,
/// and start-up against a database that refuses or does not answer.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs root and a PostgreSQL server (scripts/install-deps)"))
struct OutboxFaultTests {
    /// Quick retries, and a one-second call deadline: a lease of 2 × 1 s + 5 s.
    static let environment = TestStack.fastRetries.merging([
        "CROCANTE_BACKEND_TIMEOUT_MS": "1000", "CROCANTE_BACKEND_CONNECT_TIMEOUT_MS": "500",
        "CROCANTE_DRAIN_TIMEOUT_MS": "1000",
    ]) { $1 }

    /// Three responders on the stack's held socket, each with its own spool, all on `database`.
    private func startFleet(_ stack: TestStack, _ database: PostgresServer) throws -> [Responder] {
        try (0..<3).map { index in
            try stack.startResponder([
                "CROCANTE_OUTBOX": database.url, "CROCANTE_SPOOL_DIR": try stack.makeSpoolDirectory("spool-\(index)"),
            ])
        }
    }

    /// Rows pending (no verdict yet), and rows revoked, in the table.
    private func rows(_ database: PostgresServer) throws -> (pending: Int, revoked: Int, total: Int) {
        (
            try database.count("SELECT count(*) FROM crocante_outbox WHERE done_at IS NULL"),
            try database.count("SELECT count(*) FROM crocante_outbox WHERE verdict = 'revoked'"),
            try database.count("SELECT count(*) FROM crocante_outbox")
        )
    }

    /// The backend swallows every call (accepts, never answers) while three hosts take logouts;
    /// one host is killed with SIGKILL holding leases and never comes back; then the backend
    /// answers. The survivors deliver every token answered 200, the dead host's included.
    @Test func aHostKilledForGoodWhileTheBackendIsDownLosesNothing() throws {
        try withPostgres { database in
            let options = TestStack.Options(
                backend: ["--behavior", "blackhole"], environment: Self.environment, listen: .systemdSocket,
                startsResponder: false)
            try withTestStack(options) { stack in
                let fleet = try startFleet(stack, database)
                let tokens = Seal.tokens(300, "fleet-kill")
                let sender = TokenSender(port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens))
                sender.start(threads: 6)
                _ = sender.finish()
                let answered = sender.answeredTokens
                #expect(sender.tally.keys.sorted() == [200], "answers: \(sender.tally)")
                // Every answered token is in the table before the host dies: what the fleet holds.
                #expect(Harness.waitUntil { (try? rows(database).total) == answered.count })
                let victim = fleet[0]
                let victimClaims = "SELECT count(*) FROM crocante_outbox WHERE claimed_by LIKE '%/\(victim.pid)' AND done_at IS NULL"
                #expect(Harness.waitUntil { ((try? database.count(victimClaims)) ?? 0) > 0 }, "the victim never held a lease")
                let heldAtKill = try database.count(victimClaims)
                victim.send(SIGKILL)
                #expect(victim.waitForExit(timeout: .seconds(10)) != nil)
                stack.stopBackend()
                try stack.startBackend(name: "up")
                let missing = stack.waitForDelivery(of: answered, server: "up", timeout: .seconds(60))
                #expect(Harness.waitUntil { (try? rows(database).pending) == 0 })
                let table = try rows(database)
                let survivors = fleet.dropFirst().map(finalStatus(of:))
                let revokedBySurvivors = survivors.map { $0?["revocations_revoked"] ?? 0 }.reduce(0, +)
                print(
                    "outbox/kill -9: answered \(answered.count), revoked \(answered.count - missing.count) (table \(table.revoked)), lost \(missing.count); victim held \(heldAtKill) leases; survivors revoked \(revokedBySurvivors)")
                #expect(missing.isEmpty, "\(missing.count) tokens answered 200 never reached the backend")
                #expect(table.revoked == answered.count && table.pending == 0, "\(table)")
                #expect(survivors.allSatisfy { $0?["revocations_lost"] == 0 && $0?["outbox_enabled"] == 1 }, "\(survivors)")
                #expect(revokedBySurvivors >= answered.count)
                #expect(try database.count("SELECT count(*) FROM crocante_outbox WHERE sealed IS NOT NULL") == 0)
            }
        }
    }

    /// The database is killed (SIGQUIT: no checkpoint, recovery at restart) while logouts
    /// stream in, and restarted two seconds later: every answer is 200 and every token is revoked.
    @Test func aDatabaseRestartedMidRunLosesNothing() throws {
        try withPostgres { database in
            let options = TestStack.Options(environment: Self.environment, listen: .systemdSocket, startsResponder: false)
            try withTestStack(options) { stack in
                _ = try startFleet(stack, database)
                let tokens = Seal.tokens(1500, "fleet-restart")
                let sender = TokenSender(
                    port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens), pause: .milliseconds(5))
                sender.start(threads: 4)
                #expect(Harness.waitUntil { sender.sent >= 300 })
                database.stop(immediately: true)
                let sentWhileDown = sender.sent
                usleep(2_000_000)
                let answeredWhileDown = sender.sent - sentWhileDown
                try database.start()
                _ = sender.finish()
                let answered = sender.answeredTokens
                let missing = stack.waitForDelivery(of: answered, timeout: .seconds(60))
                #expect(Harness.waitUntil { (try? rows(database).pending) == 0 })
                let table = try rows(database)
                let statuses = stack.responders.map(finalStatus(of:))
                for (responder, status) in zip(stack.responders, statuses) where status == nil {
                    Issue.record("a responder did not stop cleanly: \(responder.stderr.suffix(3000))")
                }
                let storeErrors = statuses.map { $0?["outbox_store_errors"] ?? 0 }.reduce(0, +)
                if !missing.isEmpty {
                    let figures = [
                        "revocations_queued", "revocations_duplicate", "outbox_stored", "revocations_handed_over",
                        "revocations_expired", "revocations_pending", "revocations_parked", "spool_pending_records",
                        "revocations_adopted", "outbox_depth",
                    ]
                    let sums = figures.map { name in "\(name) \(statuses.map { $0?[name] ?? 0 })" }
                    Issue.record("missing \(missing.count); table \(table); per responder: \(sums.joined(separator: ", "))")
                }
                print(
                    "outbox/database restart: answered \(answered.count) (\(answeredWhileDown) while it was down), revoked \(answered.count - missing.count) (table \(table.revoked)), lost \(missing.count); store errors \(storeErrors)")
                #expect(sender.tally.keys.sorted() == [200], "answers: \(sender.tally)")
                #expect(answeredWhileDown > 0, "no logout was answered while the database was down")
                #expect(missing.isEmpty, "\(missing.count) tokens answered 200 never reached the backend")
                #expect(table.revoked == answered.count, "\(table)")
                #expect(statuses.allSatisfy { $0?["revocations_lost"] == 0 && $0?["revocations_dropped"] == 0 }, "\(statuses)")
            }
        }
    }

    /// The database freezes (every server process stopped) for longer than a statement may take,
    /// under load, then thaws: connects and statements hang and meet their deadlines, no
    /// responder falls over, and every token is revoked.
    @Test func aFrozenDatabaseStallsNoAnswerAndLosesNothing() throws {
        try withPostgres { database in
            let options = TestStack.Options(environment: Self.environment, listen: .systemdSocket, startsResponder: false)
            try withTestStack(options) { stack in
                _ = try startFleet(stack, database)
                let tokens = Seal.tokens(1200, "fleet-frozen")
                let sender = TokenSender(
                    port: stack.nginxPort, tokens: tokens, cookies: try Seal.sessions(tokens), pause: .milliseconds(10))
                sender.start(threads: 4)
                #expect(Harness.waitUntil { sender.sent >= 200 })
                database.freeze(true)
                usleep(8_000_000)
                database.freeze(false)
                _ = sender.finish()
                let answered = sender.answeredTokens
                let missing = stack.waitForDelivery(of: answered, timeout: .seconds(60))
                let statuses = stack.responders.map(finalStatus(of:))
                for (responder, status) in zip(stack.responders, statuses) where status == nil {
                    Issue.record("a responder did not stop cleanly: \(responder.stderr.suffix(3000))")
                }
                let errors = statuses.map { $0?["outbox_errors"] ?? 0 }.reduce(0, +)
                print(
                    "outbox/frozen database: answered \(answered.count), revoked \(answered.count - missing.count), lost \(missing.count); outbox errors \(errors)")
                #expect(sender.tally.keys.sorted() == [200], "answers: \(sender.tally)")
                #expect(missing.isEmpty, "\(missing.count) tokens answered 200 never reached the backend")
                #expect(statuses.allSatisfy { $0?["revocations_lost"] == 0 }, "\(statuses)")
                #expect(errors > 0, "no statement met its deadline while the database was frozen")
            }
        }
    }

    /// Three hosts claim from one table at once against a slow backend: each token reaches the
    /// backend exactly once, and a cookie replayed to any host within the dedup window costs no call.
    @Test func concurrentClaimsSendEachTokenOnce() throws {
        try withPostgres { database in
            let options = TestStack.Options(
                backend: ["--delay-ms", "200"], environment: Self.environment, listen: .systemdSocket, startsResponder: false)
            try withTestStack(options) { stack in
                _ = try startFleet(stack, database)
                let tokens = Seal.tokens(400, "fleet-claims")
                let cookies = try Seal.sessions(tokens)
                let sender = TokenSender(port: stack.nginxPort, tokens: tokens, cookies: cookies)
                sender.start(threads: 8)
                #expect(sender.finish().values.allSatisfy { $0 == 200 }, "answers: \(sender.tally)")
                let missing = stack.waitForDelivery(of: tokens, timeout: .seconds(60))
                #expect(Harness.waitUntil { (try? rows(database).pending) == 0 })
                let replay = TokenSender(port: stack.nginxPort, tokens: Array(tokens.prefix(100)), cookies: Array(cookies.prefix(100)))
                replay.start(threads: 4)
                #expect(replay.finish().values.allSatisfy { $0 == 200 })
                usleep(1_500_000)
                let calls = Dictionary(stack.backendRequests().compactMap(\.bearerToken).map { ($0, 1) }, uniquingKeysWith: +)
                let twice = calls.filter { $0.value > 1 }
                print(
                    "outbox/claims: \(tokens.count) tokens, \(calls.values.reduce(0, +)) backend calls, \(twice.count) sent twice, lost \(missing.count); 100 replays cost \(calls.values.reduce(0, +) - tokens.count) calls")
                #expect(missing.isEmpty)
                #expect(twice.isEmpty, "sent more than once: \(twice.count)")
                #expect(calls.count == tokens.count)
                #expect(try database.count("SELECT max(attempts) FROM crocante_outbox") == 1)
                let claimedPerHost = stack.responders.map { finalStatus(of: $0)?["outbox_claimed"] ?? -1 }
                #expect(claimedPerHost.filter { $0 > 0 }.count >= 2, "claims per host: \(claimedPerHost)")
            }
        }
    }

    /// After an outage the backlog and the logouts happening now take turns: with one backend
    /// call at a time, fresh logouts made while a hundred retries are due are each delivered
    /// within the first dozen calls, not behind the backlog.
    @Test func freshLogoutsAreNotHeldBackByTheBacklog() throws {
        try withPostgres { database in
            let environment = Self.environment.merging(["CROCANTE_BACKEND_CONCURRENCY": "1"]) { $1 }
            let options = TestStack.Options(
                backend: ["--status", "503"], environment: environment, startsResponder: false)
            try withTestStack(options) { stack in
                try stack.startResponder([
                    "CROCANTE_OUTBOX": database.url, "CROCANTE_SPOOL_DIR": try stack.makeSpoolDirectory(),
                ])
                let backlog = Seal.tokens(100, "fleet-backlog")
                for cookie in try Seal.sessions(backlog) { #expect(try stack.logout(cookie).status == 200) }
                let tried = "SELECT count(*) FROM crocante_outbox WHERE attempts > 0"
                #expect(Harness.waitUntil(timeout: .seconds(60)) { (try? database.count(tried)) == backlog.count })
                stack.stopBackend()
                try stack.startBackend(["--delay-ms", "50"], name: "up")
                let fresh = Seal.tokens(5, "fleet-fresh")
                for cookie in try Seal.sessions(fresh) { #expect(try stack.logout(cookie).status == 200) }
                let missing = stack.waitForDelivery(of: backlog + fresh, server: "up", timeout: .seconds(60))
                let order = stack.backendRequests().filter { $0.server == "up" }.compactMap(\.bearerToken)
                let positions = fresh.compactMap { order.firstIndex(of: $0) }.map { $0 + 1 }
                print("outbox/lanes: \(backlog.count) retries due, fresh logouts delivered as calls \(positions) of \(order.count); lost \(missing.count)")
                #expect(missing.isEmpty)
                #expect(positions.count == fresh.count && positions.allSatisfy { $0 <= 2 * fresh.count + 2 }, "\(positions)")
            }
        }
    }

    /// Each responder's final status after SIGTERM (the live page goes to whichever nginx picks).
    private func finalStatus(of responder: Responder) -> [String: Int]? {
        responder.send(SIGTERM)
        _ = responder.waitForExit()
        return responder.finalStatus
    }

    /// A database that refuses the password stops the start with exit 78 and one line naming
    /// CROCANTE_OUTBOX; one that does not answer yet does not: the responder serves, the spool
    /// holds, and everything is delivered once the database is up.
    @Test func startUpAgainstARefusingOrAbsentDatabase() throws {
        try withPostgres { database in
            let options = TestStack.Options(environment: Self.environment, startsResponder: false)
            try withTestStack(options) { stack in
                let refused = try Harness.run(
                    Harness.product("crocante-logout").path, [],
                    environment: stack.responderEnvironment([
                        "CROCANTE_OUTBOX": database.url(password: "wrong-password-0123"),
                        "CROCANTE_SPOOL_DIR": try stack.makeSpoolDirectory("refused"),
                    ]))
                #expect(refused.status == 78, "\(refused.stderr)")
                #expect(refused.stderr.contains("CROCANTE_OUTBOX"), "\(refused.stderr)")
                #expect(refused.stderr.contains("28P01"), "\(refused.stderr)")
                #expect(!refused.stderr.contains("wrong-password-0123"))

                database.stop()
                let responder = try stack.startResponder([
                    "CROCANTE_OUTBOX": database.url, "CROCANTE_SPOOL_DIR": try stack.makeSpoolDirectory("absent"),
                ])
                let tokens = Seal.tokens(20, "fleet-absent")
                for cookie in try Seal.sessions(tokens) { #expect(try stack.logout(cookie).status == 200) }
                #expect(Harness.waitUntil { ((try? stack.status())?["outbox_store_errors"] ?? 0) > 0 })
                #expect(stack.backendRequests().isEmpty, "delivered without the outbox")
                try database.start()
                let missing = stack.waitForDelivery(of: tokens, timeout: .seconds(30))
                let status = try stack.status()
                stack.stopResponder()
                print("outbox/absent at start: answered \(tokens.count), revoked \(tokens.count - missing.count), lost \(missing.count)")
                #expect(missing.isEmpty)
                #expect(status["outbox_stored"] == tokens.count && status["outbox_connected"] == 1, "\(status)")
                #expect(responder.finalStatus?["revocations_revoked"] == tokens.count)
            }
        }
    }
}
