/// The fleet-wide outbox (issue 19): a secret, since its URL may hold the database password.
extension Settings {
    static let outbox = SettingDeclaration(
        name: "CROCANTE_OUTBOX", flag: nil, acceptsNextPublicSpelling: false, credential: "outbox_url",
        accepted: "`postgres://user:password@host:5432/database` (`?sslmode=verify-full` default, or `disable`; `?host=/dir` for a unix socket)",
        defaultText: "unset",
        help: "A PostgreSQL table every host shares for pending revocations: any host delivers what another took, so a host lost for good loses none. The spool still buffers while the database is down. Unset: each host delivers its own.",
        example: nil)
}
