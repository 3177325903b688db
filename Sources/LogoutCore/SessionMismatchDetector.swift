/// Counts the session cookies that were present but opened nothing, by reason, and says when
/// so many fail the GCM tag check that the configured secret is likely not the login service's.
///
/// A wrong `SESSION_SECRET` (a CRLF left in a file, a trailing space in a variable) is otherwise
/// silent: every logout still answers 200 and revokes nothing. Pure: the caller passes the time
/// and logs the warning; nothing here ever holds a cookie.
public struct SessionMismatchDetector: Sendable {
    /// Cookie values looked at since start, by outcome.
    public struct Counts: Sendable, Equatable {
        public var opened = 0
        public var notBase64url = 0
        public var tooShort = 0
        public var tagMismatch = 0
        public var badPlaintext = 0

        public init() {}

        /// Present but not opened, whatever the reason.
        public var failed: Int { notBase64url + tooShort + tagMismatch + badPlaintext }
    }

    /// What to log: the window's figures, never a cookie.
    public struct Warning: Sendable, Equatable {
        public let present: Int
        public let tagMismatches: Int
        public let message = "most session cookies fail the tag check: SESSION_SECRET (or SESSION_SECRET_PREVIOUS) is likely not the login service's secret"
    }

    /// The share of present cookies failing the tag check, over one window, that warns; 0 never warns.
    public let share: Double
    /// Fewer cookies than this in a window say nothing: a few forged cookies are not a wrong secret.
    public let minimumSample: Int
    public let window: Duration
    public private(set) var counts = Counts()

    private var windowStart: ContinuousClock.Instant?
    private var windowPresent = 0
    private var windowMismatches = 0
    private var warned = false

    public init(share: Double, minimumSample: Int = 20, window: Duration = .seconds(60)) {
        self.share = share
        self.minimumSample = minimumSample
        self.window = window
    }

    /// Records one present cookie value's outcome at `now`; a warning at most once a window.
    public mutating func record(_ outcome: Result<AccessToken, SealedSession.OpenFailure>, at now: ContinuousClock.Instant) -> Warning? {
        switch outcome {
        case .success: counts.opened += 1
        case .failure(.notBase64url): counts.notBase64url += 1
        case .failure(.tooShort): counts.tooShort += 1
        case .failure(.tagMismatch): counts.tagMismatch += 1
        case .failure(.badPlaintext): counts.badPlaintext += 1
        }
        if let start = windowStart, now - start < window {
        } else {
            windowStart = now
            windowPresent = 0
            windowMismatches = 0
            warned = false
        }
        windowPresent += 1
        if case .failure(.tagMismatch) = outcome { windowMismatches += 1 }
        guard share > 0, !warned, windowPresent >= minimumSample,
            Double(windowMismatches) >= share * Double(windowPresent)
        else { return nil }
        warned = true
        return Warning(present: windowPresent, tagMismatches: windowMismatches)
    }
}
