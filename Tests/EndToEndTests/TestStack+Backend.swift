import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

extension TestStack {
    /// Starts a stand-in on the stack's backend port (after ``stopBackend()``, or where nothing
    /// listened), recording into the same file; `name` labels its lines.
    @discardableResult
    func startBackend(_ arguments: [String] = [], name: String) throws -> StandInBackend {
        var lastError: Error?
        // The port was just freed by a stopped stand-in, or was only probed free: retry a bind race briefly.
        for _ in 0..<50 {
            do {
                let started = try StandInBackend(arguments, directory: directory, port: backendPort, name: name)
                backend = started
                backends.append(started)
                return started
            } catch {
                lastError = error
                usleep(100_000)
            }
        }
        throw lastError ?? HarnessError("stand-in did not start")
    }

    /// Stops the running stand-in: nothing listens on the backend port until ``startBackend(_:name:)``.
    func stopBackend() {
        backend?.stop()
        backend = nil
    }

    /// The distinct tokens the backend has received: by any stand-in, or by the one named `server`.
    func deliveredTokens(server: String? = nil) -> Set<String> {
        Set(backendRequests().filter { server == nil || $0.server == server }.compactMap(\.bearerToken))
    }

    /// Waits until every token in `tokens` has reached the backend (the stand-in named `server`,
    /// if given); returns the ones still missing.
    func waitForDelivery(of tokens: some Collection<String>, server: String? = nil, timeout: Duration = .seconds(30)) -> Set<String> {
        let wanted = Set(tokens)
        _ = Harness.waitUntil(timeout: timeout) { wanted.isSubset(of: deliveredTokens(server: server)) }
        return wanted.subtracting(deliveredTokens(server: server))
    }
}
