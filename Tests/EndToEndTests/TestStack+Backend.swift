import Testing

extension TestStack {
    /// Everything the stand-in backend has received so far.
    func backendRequests() -> [StandInBackend.Request] { StandInBackend.recorded(in: recordFile) }

    var backendBearers: [String] { backendRequests().compactMap { $0.header("Authorization") } }

    /// Waits until the backend has seen at least `count` requests; true when it has seen exactly that many.
    /// With one worker and one backend call at a time, a count that stops at `count` after a final
    /// valid logout proves that nothing before it called the backend.
    func backendReaches(_ count: Int) -> Bool {
        _ = Harness.waitUntil { backendRequests().count >= count }
        return backendRequests().count == count
    }

    /// Sends one valid logout with a fresh token, and waits until the backend has seen
    /// `previous + 1` requests, the last one for that token. With ``oneAtATime`` this proves that
    /// every request sent before made exactly `previous` backend calls: a call made for any of
    /// them would have reached the backend first.
    func expectNoOtherCall(after previous: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let token = Seal.tokens(1, "marker")[0]
        let answer = try logout(Seal.session(token))
        #expect(answer.status == 200, sourceLocation: sourceLocation)
        #expect(backendReaches(previous + 1), "backend saw \(backendRequests().count), expected \(previous + 1)", sourceLocation: sourceLocation)
        #expect(backendBearers.last == "Bearer \(token)", sourceLocation: sourceLocation)
    }
}
