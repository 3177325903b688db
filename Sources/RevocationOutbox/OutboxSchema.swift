/// The outbox's tables, and the migrations that make them, newest last.
///
/// Instants are wall milliseconds since the epoch in `bigint`. Leases, due times and the done
/// instant come from the database's clock (`now_ms`), so that hosts whose clocks disagree still
/// agree on who holds a row; `logged_out_at` and `give_up_at` come from the host that took the
/// logout, as in its spool.
enum OutboxSchema {
    /// The database's clock, in the columns' unit.
    static let nowMilliseconds = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    /// Serializes migrations across a fleet starting at once; any fixed number does.
    static let migrationLock: Int64 = 0x6372_6f63_6f75_7462  // "crocoutb"

    static let versionTable = "CREATE TABLE IF NOT EXISTS crocante_outbox_schema (version integer NOT NULL)"

    /// `migrations[n]` takes the schema from version n to n + 1.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE crocante_outbox (
                token_key bytea PRIMARY KEY,
                sealed bytea,
                logged_out_at bigint NOT NULL,
                give_up_at bigint NOT NULL,
                bounded_by_exp boolean NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at bigint NOT NULL,
                claim_id bigint,
                claimed_by text,
                lease_until bigint,
                done_at bigint,
                verdict text,
                status integer,
                last_error text
            )
            """,
            "CREATE INDEX crocante_outbox_due ON crocante_outbox (next_attempt_at) WHERE done_at IS NULL",
            "CREATE INDEX crocante_outbox_done ON crocante_outbox (done_at) WHERE done_at IS NOT NULL",
        ]
    ]

    static var currentVersion: Int { migrations.count }
}
