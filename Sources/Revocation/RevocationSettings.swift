import LogoutCore

/// How the revocation queue holds, deduplicates, retries and gives up on revocations.
///
/// A plain value with defaults; the lead wires the environment onto it. Keys, key by key:
/// - `capacity` (`CROCANTE_QUEUE_CAPACITY`, Int, default 10000): tokens that may wait in memory
///   for a call slot or a retry (waiting + retrying, calls in flight not counted). Past it, new
///   tokens park in the journal when there is one (read back as room frees), else are dropped,
///   counted and logged at most once a second.
/// - `concurrency` (`CROCANTE_BACKEND_CONCURRENCY`, Int, default 16): backend calls at once.
/// - `dedupWindow` (`CROCANTE_DEDUP_WINDOW`, seconds, default 300): how long a token that got its
///   final verdict is remembered, so a replay of its cookie is not queued again.
/// - `dedupEntries` (no variable, default 100000): finished tokens remembered at most; the oldest
///   are forgotten first. About 100 bytes each.
/// - `retryBase` (`CROCANTE_RETRY_BASE_MS`, ms, default 250) and `retryMax`
///   (`CROCANTE_RETRY_MAX_MS`, ms, default 60000): the n-th retry waits a uniformly random time
///   in `0...min(retryMax, retryBase * 2^(n-1))` (full jitter); a `Retry-After` replaces that,
///   clamped to `retryMax`.
/// - `maxAge` (`CROCANTE_REVOCATION_MAX_AGE`, seconds, default 86400): when the token carries no
///   readable JWT `exp`, no attempt is made later than this after the logout.
/// - `adoptionInterval` (no variable, default 5 s): how often the journal's orphaned segments
///   (a crashed or stopped predecessor's) are adopted; also once at start.
public struct RevocationSettings: Sendable, Equatable {
    public var capacity = 10_000
    public var concurrency = 16
    /// Five minutes: a replayed cookie then costs at most one backend call per token every five
    /// minutes, while 100k remembered tokens (about 10 MB) cover 330 logouts a second.
    public var dedupWindow: Duration = .seconds(300)
    public var dedupEntries = 100_000
    /// A quarter second doubles to the one-minute cap in about eight failures: quick to notice
    /// a blip, gentle on a backend that is down for longer.
    public var retryBase: Duration = .milliseconds(250)
    public var retryMax: Duration = .seconds(60)
    public var maxAge: Duration = .seconds(86_400)
    public var adoptionInterval: Duration = .seconds(5)

    public init() {}

    public init(capacity: Int, concurrency: Int) {
        self.capacity = capacity
        self.concurrency = concurrency
    }
}

extension RevocationSettings {
    /// Capped exponential backoff with full jitter: uniform in `0...min(max, base * 2^(n-1))`
    /// milliseconds after the n-th failed attempt. A `Retry-After` replaces it, clamped to the
    /// cap, so a backend cannot park a token for longer than we would have. The queue and the
    /// fleet's outbox both retry by this rule.
    public func retryDelay(attempt: Int, retryAfter: Int64?, random: inout some RandomNumberGenerator) -> Int64 {
        let cap = max(0, retryMax.wholeMilliseconds)
        if let retryAfter { return min(max(0, retryAfter), cap) }
        let base = max(1, retryBase.wholeMilliseconds)
        let shift = min(max(0, attempt - 1), 40)
        let ceiling = base > cap >> shift ? cap : min(cap, base << shift)
        return Int64.random(in: 0...ceiling, using: &random)
    }
}
