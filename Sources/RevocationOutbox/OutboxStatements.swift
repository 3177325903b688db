import Logging
import LogoutCore
import NIOCore
import PostgresNIO
import Revocation

/// A revocation on its way into the table, sealed.
struct OutboxRow: Sendable {
    var key: [UInt8]
    var sealed: [UInt8]
    var loggedOutAt: UnixMilliseconds
    var giveUpAt: UnixMilliseconds
    var boundedByExp: Bool
}

/// A row this host holds the lease of.
struct ClaimedRow: Sendable {
    var key: [UInt8]
    var sealed: [UInt8]
    /// Attempts made, the one this claim is for included.
    var attempts: Int
    var giveUpAt: UnixMilliseconds
    var boundedByExp: Bool
    var claim: Int64
}

/// What to write back for a claimed row.
struct OutboxResult: Sendable {
    var key: [UInt8]
    var claim: Int64
    var disposition: OutboxDisposition
}

/// Every statement the outbox runs. Batches travel as arrays through `unnest`, one round trip each.
enum OutboxStatements {
    private static let now = OutboxSchema.nowMilliseconds

    /// Creates or migrates the schema, one host at a time. Throws when the database's schema
    /// is newer than this build knows.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> (from: Int, to: Int) {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(OutboxSchema.migrationLock))", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: OutboxSchema.versionTable), logger: logger)
            var version = 0
            for try await found in try await connection.query(
                "SELECT coalesce(max(version), 0)::int8 FROM crocante_outbox_schema", logger: logger
            ).decode(Int64.self) {
                version = Int(found)
            }
            guard version <= OutboxSchema.currentVersion else {
                throw OutboxSchemaTooNew(found: version, known: OutboxSchema.currentVersion)
            }
            for statements in OutboxSchema.migrations[version...] {
                for statement in statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
            if version < OutboxSchema.currentVersion {
                try await connection.query("DELETE FROM crocante_outbox_schema", logger: logger)
                try await connection.query(
                    "INSERT INTO crocante_outbox_schema (version) VALUES (\(Int64(OutboxSchema.currentVersion)))",
                    logger: logger)
            }
            return (version, OutboxSchema.currentVersion)
        }
    }

    /// Writes `rows` due now. A token already pending, or done within `dedupWindow`, is left
    /// as it is: the fleet shares one dedup window. Returns how many rows were written.
    static func insert(
        _ rows: [OutboxRow], dedupWindow: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        let query: PostgresQuery = """
            INSERT INTO crocante_outbox AS o
                (token_key, sealed, logged_out_at, give_up_at, bounded_by_exp, attempts, next_attempt_at)
            SELECT k, s, l, g, b, 0, \(unescaped: now)
            FROM unnest(\(rows.map { ByteBuffer(bytes: $0.key) })::bytea[], \(rows.map { ByteBuffer(bytes: $0.sealed) })::bytea[],
                        \(rows.map(\.loggedOutAt))::int8[], \(rows.map(\.giveUpAt))::int8[],
                        \(rows.map(\.boundedByExp))::bool[]) AS t(k, s, l, g, b)
            ON CONFLICT (token_key) DO UPDATE SET
                sealed = excluded.sealed, logged_out_at = excluded.logged_out_at, give_up_at = excluded.give_up_at,
                bounded_by_exp = excluded.bounded_by_exp, attempts = 0, next_attempt_at = excluded.next_attempt_at,
                claim_id = NULL, claimed_by = NULL, lease_until = NULL, done_at = NULL, verdict = NULL,
                status = NULL, last_error = NULL
            WHERE o.done_at IS NOT NULL AND o.done_at < \(unescaped: now) - \(dedupWindow)
            RETURNING 1
            """
        return try await committed(on: connection, logger: logger) { connection in
            var written = 0
            for try await _ in try await connection.query(query, logger: logger) { written += 1 }
            return written
        }
    }

    /// Takes the lease of up to `limit` due rows nobody holds. Two lanes, as in the in-process
    /// queue: rows never tried (fresh logouts) and rows tried before (retries, and rows of a
    /// host that died holding them), each oldest due first, taking turns fresh first, so that
    /// neither starves the other: after an outage the backlog cannot hold back the logouts
    /// happening now, and a sustained flood cannot hold back the retries. A lane with nothing
    /// due leaves the whole room to the other. `SKIP LOCKED`: hosts claiming at once each get
    /// other rows, and none waits for another.
    static func claim(
        limit: Int, claim: Int64, claimer: String, lease: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> [ClaimedRow] {
        let due = """
            done_at IS NULL AND sealed IS NOT NULL AND next_attempt_at <= \(OutboxSchema.nowMilliseconds)
            AND (lease_until IS NULL OR lease_until < \(OutboxSchema.nowMilliseconds)) AND give_up_at > \(OutboxSchema.nowMilliseconds)
            """
        let query: PostgresQuery = """
            WITH fresh AS (
                SELECT token_key, row_number() OVER (ORDER BY next_attempt_at) * 2 - 1 AS turn FROM (
                    SELECT token_key, next_attempt_at FROM crocante_outbox WHERE \(unescaped: due) AND attempts = 0
                    ORDER BY next_attempt_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED) AS lane),
            retry AS (
                SELECT token_key, row_number() OVER (ORDER BY next_attempt_at) * 2 AS turn FROM (
                    SELECT token_key, next_attempt_at FROM crocante_outbox WHERE \(unescaped: due) AND attempts > 0
                    ORDER BY next_attempt_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED) AS lane),
            picked AS (
                SELECT token_key FROM (SELECT * FROM fresh UNION ALL SELECT * FROM retry) AS both_lanes
                ORDER BY turn LIMIT \(Int64(limit)))
            UPDATE crocante_outbox AS o
            SET claim_id = \(claim), claimed_by = \(claimer), lease_until = \(unescaped: now) + \(lease),
                attempts = o.attempts + 1
            FROM picked
            WHERE o.token_key = picked.token_key
            RETURNING o.token_key, o.sealed, o.attempts::int8, o.give_up_at, o.bounded_by_exp
            """
        return try await committed(on: connection, logger: logger) { connection in
            var rows: [ClaimedRow] = []
            for try await (key, sealed, attempts, giveUpAt, bounded) in try await connection.query(query, logger: logger)
                .decode((ByteBuffer, ByteBuffer, Int64, Int64, Bool).self)
            {
                rows.append(
                    ClaimedRow(
                        key: Array(buffer: key), sealed: Array(buffer: sealed), attempts: Int(attempts), giveUpAt: giveUpAt,
                        boundedByExp: bounded, claim: claim))
            }
            return rows
        }
    }

    /// `body` in an explicit transaction, returning only once COMMIT has completed. A lone
    /// statement is not enough: in the extended protocol its rows and CommandComplete arrive
    /// before the implicit commit at Sync, so a server killed in between leaves a write the
    /// client saw succeed and the database never kept. An insert reported stored must be
    /// stored, and a claim reported held must be held.
    private static func committed<T: Sendable>(
        on connection: PostgresConnection, logger: Logger, _ body: (PostgresConnection) async throws -> sending T
    ) async throws -> T {
        try await connection.withTransaction(logger: logger) { try await body($0) }
    }

    /// Writes back what the calls gave, fenced on the claim: a row whose lease ran out and was
    /// claimed again is the new holder's to write.
    static func complete(_ results: [OutboxResult], on connection: PostgresConnection, logger: Logger) async throws {
        var done: [Bool] = [], verdicts: [String] = [], statuses: [Int64] = [], delays: [Int64] = [], reasons: [String] = []
        for result in results {
            switch result.disposition {
            case .done(let verdict, let status):
                done.append(true)
                verdicts.append(verdict.rawValue)
                statuses.append(Int64(status ?? 0))
                delays.append(0)
                reasons.append("")
            case .retry(let delay, let reason):
                done.append(false)
                verdicts.append("")
                statuses.append(0)
                delays.append(delay)
                reasons.append(reason)
            }
        }
        let query: PostgresQuery = """
            UPDATE crocante_outbox AS o SET
                done_at = CASE WHEN r.done THEN \(unescaped: now) END,
                sealed = CASE WHEN r.done THEN NULL ELSE o.sealed END,
                verdict = nullif(r.verdict, ''), status = nullif(r.status, 0)::int4,
                next_attempt_at = CASE WHEN r.done THEN o.next_attempt_at ELSE \(unescaped: now) + r.delay END,
                claim_id = NULL, claimed_by = NULL, lease_until = NULL, last_error = nullif(r.reason, '')
            FROM unnest(\(results.map { ByteBuffer(bytes: $0.key) })::bytea[], \(results.map(\.claim))::int8[],
                        \(done)::bool[], \(verdicts)::text[], \(statuses)::int8[], \(delays)::int8[],
                        \(reasons)::text[]) AS r(key, claim, done, verdict, status, delay, reason)
            WHERE o.token_key = r.key AND o.claim_id = r.claim
            """
        try await connection.query(query, logger: logger)
    }

    /// Gives up rows past their `give_up_at` that nobody holds; returns, per row, whether it was
    /// bounded by the token's `exp` (dead anyway) rather than the maximum age.
    static func expire(on connection: PostgresConnection, logger: Logger) async throws -> [Bool] {
        let query: PostgresQuery = """
            UPDATE crocante_outbox SET done_at = \(unescaped: now), verdict = 'expired', sealed = NULL
            WHERE done_at IS NULL AND give_up_at <= \(unescaped: now)
              AND (lease_until IS NULL OR lease_until < \(unescaped: now))
            RETURNING bounded_by_exp
            """
        var bounds: [Bool] = []
        for try await bounded in try await connection.query(query, logger: logger).decode(Bool.self) { bounds.append(bounded) }
        return bounds
    }

    /// Forgets rows done longer ago than the dedup window.
    static func purge(dedupWindow: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "DELETE FROM crocante_outbox WHERE done_at IS NOT NULL AND done_at < \(unescaped: now) - \(dedupWindow)",
            logger: logger)
    }

    /// Rows pending fleet-wide, and the age of the oldest in seconds.
    static func depth(on connection: PostgresConnection, logger: Logger) async throws -> (rows: Int, oldestAgeSeconds: Int) {
        let query: PostgresQuery = """
            SELECT count(*)::int8, coalesce((\(unescaped: now) - min(logged_out_at)) / 1000, 0)::int8
            FROM crocante_outbox WHERE done_at IS NULL
            """
        for try await (rows, age) in try await connection.query(query, logger: logger).decode((Int64, Int64).self) {
            return (Int(rows), Int(max(0, age)))
        }
        return (0, 0)
    }
}

/// The database holds a schema version this build does not know: a newer build migrated it.
struct OutboxSchemaTooNew: Error, CustomStringConvertible {
    let found: Int
    let known: Int
    var description: String { "the database's outbox schema is version \(found); this build knows up to \(known)" }
}
