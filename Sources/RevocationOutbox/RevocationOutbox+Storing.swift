import Logging
import LogoutCore
import PostgresNIO
import Revocation
import Synchronization

/// The storing half: the queue's notifier, writing sealed tokens to the table in batches.
extension RevocationOutbox {
    public func revoke(_ token: AccessToken, completion: @escaping @Sendable (RevocationOutcome) -> Void) {
        revoke(token, loggedOutAt: Self.wallNow(), completion: completion)
    }

    /// Seals `token` and queues it for the next write; `completion` gets `.stored` once the row
    /// is committed, or a failure the queue retries.
    public func revoke(
        _ token: AccessToken, loggedOutAt: UnixMilliseconds, completion: @escaping @Sendable (RevocationOutcome) -> Void
    ) {
        let key = seal.rowKey(for: token)
        let expiresAt = TokenExpiry.of(token)
        let row = OutboxRow(
            key: key, sealed: seal.seal(token, rowKey: key), loggedOutAt: loggedOutAt,
            giveUpAt: expiresAt ?? loggedOutAt + settings.revocation.maxAge.wholeMilliseconds, boundedByExp: expiresAt != nil)
        let refused = state.withLock { state in
            if state.stopping { return true }
            state.toStore.append(Waiting(row: row, completion: completion))
            return false
        }
        if refused { return completion(.failed(.connection("outbox stopping"))) }
        storeWakeup.signal()
    }

    /// Writes what waits, a batch per round trip, until stopped.
    func storeLoop() async {
        var failures = 0
        while true {
            await storeWakeup.wait(timeout: .seconds(1))
            while true {
                let (batch, stopping) = state.withLock { state in
                    let batch = Array(state.toStore.prefix(Self.storeBatch))
                    state.toStore.removeFirst(batch.count)
                    return (batch, state.stopping)
                }
                if stopping {
                    for waiting in batch { waiting.completion(.failed(.connection("outbox stopping"))) }
                    return
                }
                if batch.isEmpty { break }
                // One token twice in one statement would make ON CONFLICT refuse the whole batch.
                var seen = Set<[UInt8]>()
                let rows = batch.map(\.row).filter { seen.insert($0.key).inserted }
                do {
                    let dedupWindow = settings.revocation.dedupWindow.wholeMilliseconds
                    let written = try await storeConnection.run { [logger] connection in
                        try await OutboxStatements.insert(rows, dedupWindow: dedupWindow, on: connection, logger: logger)
                    }
                    failures = 0
                    state.withLock { $0.statistics.stored += written }
                    for waiting in batch { waiting.completion(.stored) }
                    deliverWakeup.signal()
                } catch {
                    failures += 1
                    state.withLock { $0.statistics.storeErrors += 1; $0.statistics.errors += 1 }
                    noteError("outbox: revocations not stored, the queue retries them (the spool keeps them meanwhile)", error)
                    let reason = "outbox: " + Self.reason(error)
                    for waiting in batch { waiting.completion(.failed(.connection(reason))) }
                }
            }
        }
    }
}
