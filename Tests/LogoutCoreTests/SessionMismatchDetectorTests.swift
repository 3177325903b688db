import LogoutCore
import Testing

@Suite struct SessionMismatchDetectorTests {
    static let start = ContinuousClock.now
    static let token = AccessToken(validating: Array("t".utf8))!
    typealias Outcome = Result<AccessToken, SealedSession.OpenFailure>

    @Test func countsEveryReason() {
        var detector = SessionMismatchDetector(share: 0.5)
        let outcomes: [Outcome] = [.success(Self.token), .failure(.notBase64url), .failure(.tooShort), .failure(.tagMismatch),
                                   .failure(.tagMismatch), .failure(.badPlaintext)]
        for outcome in outcomes { _ = detector.record(outcome, at: Self.start) }
        var expected = SessionMismatchDetector.Counts()
        expected.opened = 1
        expected.notBase64url = 1
        expected.tooShort = 1
        expected.tagMismatch = 2
        expected.badPlaintext = 1
        #expect(detector.counts == expected)
        #expect(detector.counts.failed == 5)
    }

    /// (share, outcomes in one window as (opened, mismatched), warns)
    @Test(arguments: [
        (0.5, 10, 10, true),
        (0.5, 11, 9, false),
        (0.5, 0, 19, false),  // below the sample size
        (0.5, 0, 20, true),
        (0.9, 2, 18, true),
        (0.9, 3, 17, false),
        (0.0, 0, 100, false),  // 0 disables
        (1.0, 0, 20, true),
    ])
    func warnsAtTheShare(share: Double, opened: Int, mismatched: Int, warns: Bool) {
        var detector = SessionMismatchDetector(share: share)
        var warnings: [SessionMismatchDetector.Warning] = []
        for _ in 0..<opened { if let w = detector.record(.success(Self.token), at: Self.start) { warnings.append(w) } }
        for _ in 0..<mismatched { if let w = detector.record(.failure(.tagMismatch), at: Self.start) { warnings.append(w) } }
        #expect(warnings.count == (warns ? 1 : 0))
        if let warning = warnings.first {
            #expect(warning.message.contains("SESSION_SECRET"))
        }
    }

    @Test func warnsOncePerWindowAndStartsOverInTheNext() {
        var detector = SessionMismatchDetector(share: 0.5, minimumSample: 2, window: .seconds(60))
        var times: [Duration] = []
        for second in 0..<200 {
            if detector.record(.failure(.tagMismatch), at: Self.start + .seconds(second)) != nil { times.append(.seconds(second)) }
        }
        #expect(times == [.seconds(1), .seconds(61), .seconds(121), .seconds(181)])
    }

    @Test func otherFailuresDoNotPointAtTheSecret() {
        var detector = SessionMismatchDetector(share: 0.5, minimumSample: 2)
        for _ in 0..<50 {
            #expect(detector.record(.failure(.notBase64url), at: Self.start) == nil)
            #expect(detector.record(.failure(.tooShort), at: Self.start) == nil)
        }
    }
}
