import LogoutCore
import Revocation
import Testing

@testable import RevocationOutbox

/// The outbox's plain values: its URL, its seal, and what a call's outcome makes of a row.
@Suite struct OutboxAddressTests {
    @Test func aTCPURLNamesHostPortUserDatabaseAndVerifiesTLSByDefault() throws {
        let address = try OutboxAddress(url: "postgres://crocante:s%40cret@db.example:6432/logout", setting: "CROCANTE_OUTBOX")
        #expect(address.endpoint == .tcp(host: "db.example", port: 6432))
        #expect(address.username == "crocante")
        #expect(address.password == "s@cret")
        #expect(address.database == "logout")
        #expect(address.tls == .verifyFull)
        #expect(address.description == "postgres://crocante:***@db.example:6432/logout?sslmode=verify-full")
    }

    @Test func anIPv6LiteralAndSSLModeDisable() throws {
        let address = try OutboxAddress(url: "postgresql://u@[::1]/d?sslmode=disable", setting: "CROCANTE_OUTBOX")
        #expect(address.endpoint == .tcp(host: "::1", port: 5432))
        #expect(address.password == nil)
        #expect(address.tls == .disable)
        #expect(address.description == "postgres://u@[::1]:5432/d?sslmode=disable")
    }

    @Test func aUnixSocketDirectoryAsLibpqSpellsIt() throws {
        let address = try OutboxAddress(url: "postgres://u@/d?host=/run/postgresql&port=5433", setting: "CROCANTE_OUTBOX")
        #expect(address.endpoint == .unixSocket(directory: "/run/postgresql", port: 5433))
        #expect(address.endpoint.socketPath == "/run/postgresql/.s.PGSQL.5433")
        #expect(address.tls == .disable)
    }

    @Test(arguments: [
        ("mysql://u@h/d", "must start with postgres:// or postgresql://"),
        ("postgres://h/d", "names no user"),
        ("postgres://u@h", "must name one database after the host"),
        ("postgres://u@h/d/e", "must name one database after the host"),
        ("postgres://u@h:0/d", "port must be 1–65535"),
        ("postgres://u@h/d?sslmode=allow", "sslmode must be disable, require or verify-full"),
        ("postgres://u@h/d?application_name=x", "has an unknown parameter application_name (known: host, port, sslmode)"),
        ("postgres://u@h/d?host=relative", "host= must be the absolute path of a unix socket directory, with no host in the URL"),
        ("postgres://u@/d?host=/run/pg&sslmode=require", "sslmode applies to TCP only; a unix socket is never encrypted"),
        ("not a url", "not a URL (postgres://user:password@host:5432/database)"),
        ("postgres://u:hunter2@h:70000/d", "port must be 1–65535"),
    ])
    func badURLsAreRefusedWithTheReasonAndNeverThePassword(url: String, reason: String) {
        #expect(throws: CrocanteError.invalidSetting("CROCANTE_OUTBOX", reason: reason)) {
            try OutboxAddress(url: url, setting: "CROCANTE_OUTBOX")
        }
    }
}

@Suite struct OutboxSealTests {
    static let current = try! SessionSecret("outbox-test-secret-0123456789-abcdefgh", setting: "SESSION_SECRET")
    static let previous = try! SessionSecret("outbox-old-secret-0123456789-abcdefghi", setting: "SESSION_SECRET_PREVIOUS")
    static let token = AccessToken(validating: "eyJhbGciOiJIUzI1NiJ9.e30.sig".utf8)!

    @Test func everyHostWithTheSecretFindsOneTokenUnderOneKey() {
        let one = OutboxSeal(secrets: [Self.current])
        let other = OutboxSeal(secrets: [Self.current, Self.previous])
        #expect(one.rowKey(for: Self.token) == other.rowKey(for: Self.token))
        #expect(one.rowKey(for: Self.token).count == 32)
        #expect(OutboxSeal(secrets: [Self.previous]).rowKey(for: Self.token) != one.rowKey(for: Self.token))
    }

    @Test func aSealedTokenOpensUnderItsOwnRowOnlyAndNeverShowsInClear() {
        let seal = OutboxSeal(secrets: [Self.current])
        let key = seal.rowKey(for: Self.token)
        let sealed = seal.seal(Self.token, rowKey: key)
        #expect(seal.open(sealed, rowKey: key) == Self.token)
        #expect(seal.open(sealed, rowKey: seal.rowKey(for: AccessToken(validating: "other".utf8)!)) == nil)
        #expect(!sealed.windows(ofCount: 8).contains { Array($0) == Array(Self.token.value.utf8.prefix(8)) })
        #expect(seal.seal(Self.token, rowKey: key) != sealed)
    }

    @Test func rowsSealedBeforeARotationStillOpenWithThePreviousSecret() {
        let before = OutboxSeal(secrets: [Self.previous])
        let key = before.rowKey(for: Self.token)
        let sealed = before.seal(Self.token, rowKey: key)
        #expect(OutboxSeal(secrets: [Self.current, Self.previous]).open(sealed, rowKey: key) == Self.token)
        #expect(OutboxSeal(secrets: [Self.current]).open(sealed, rowKey: key) == nil)
    }
}

@Suite struct OutboxDispositionTests {
    struct Fixed: RandomNumberGenerator {
        mutating func next() -> UInt64 { .max }
    }

    static var settings: RevocationSettings {
        var settings = RevocationSettings()
        settings.retryBase = .milliseconds(100)
        settings.retryMax = .milliseconds(1_000)
        return settings
    }

    static func after(_ outcome: RevocationOutcome, attempts: Int = 1, giveUpAt: Int64 = 1_000_000) -> OutboxDisposition {
        var random = Fixed()
        return OutboxDisposition.after(
            outcome, attempts: attempts, giveUpAt: giveUpAt, now: 0, settings: settings, random: &random)
    }

    @Test func verdictsAreFinal() {
        #expect(Self.after(.revoked(status: 204)) == .done(.revoked, status: 204))
        #expect(Self.after(.rejected(status: 401)) == .done(.rejected, status: 401))
    }

    @Test func failuresBackOffByTheQueuesOwnRule() {
        // The generator's top draw gives each ceiling: 100, 200, 400, 800, then the 1000 cap.
        #expect(Self.after(.failed(.timeout), attempts: 1) == .retry(delay: 100, reason: "timeout"))
        #expect(Self.after(.failed(.status(503)), attempts: 3) == .retry(delay: 400, reason: "status 503"))
        #expect(Self.after(.failed(.timeout), attempts: 9) == .retry(delay: 1_000, reason: "timeout"))
        #expect(Self.after(.failed(.status(429), retryAfter: 300)) == .retry(delay: 300, reason: "status 429"))
        #expect(Self.after(.failed(.status(429), retryAfter: 90_000)) == .retry(delay: 1_000, reason: "status 429"))
    }

    @Test func aRetryDueAtOrAfterTheGiveUpInstantExpiresTheRow() {
        #expect(Self.after(.failed(.timeout), attempts: 1, giveUpAt: 100) == .done(.expired, status: nil))
        #expect(Self.after(.failed(.timeout), attempts: 1, giveUpAt: 101) == .retry(delay: 100, reason: "timeout"))
    }
}
