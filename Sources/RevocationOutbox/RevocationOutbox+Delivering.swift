import Logging
import LogoutCore
import PostgresNIO
import Revocation
import Synchronization

/// The delivering half: claims due rows of any host, calls the backend, writes verdicts back.
extension RevocationOutbox {
    /// Until the database answers at all: then the schema, then delivery.
    func migrateWhenReachable() async {
        var failures = 0
        while !state.withLock({ $0.stopping }) {
            do {
                try await prepare()
                return
            } catch {
                failures += 1
                if case .refused(let reason) = error {
                    logger.critical("outbox refused: revocations are stored nowhere but the spool", metadata: ["reason": "\(reason)"])
                }
                await deliverWakeup.wait(timeout: Self.backoff(failures))
            }
        }
    }

    /// Writes verdicts back, expires and purges once a second, claims what it has room for, waits.
    func deliverLoop() async {
        var failures = 0
        var lastHousekeeping: ContinuousClock.Instant?
        while !state.withLock({ $0.stopping }) {
            do {
                try await writeResults()
                if lastHousekeeping.map({ ContinuousClock.now - $0 >= .seconds(1) }) ?? true {
                    try await housekeeping()
                    lastHousekeeping = .now
                }
                try await claimAndCall()
                failures = 0
                state.withLock { $0.statistics.connected = true }
                await deliverWakeup.wait(timeout: settings.pollInterval)
            } catch {
                failures += 1
                state.withLock { $0.statistics.errors += 1; $0.statistics.connected = false }
                noteError("outbox: the database does not answer, delivery resumes when it does", error)
                await deliverWakeup.wait(timeout: Self.backoff(failures))
            }
        }
    }

    private func writeResults() async throws {
        let results = state.withLock { state in
            defer { state.results = [] }
            return state.results
        }
        guard !results.isEmpty else { return }
        do {
            try await deliverConnection.run { [logger] in try await OutboxStatements.complete(results, on: $0, logger: logger) }
        } catch {
            // Kept for the next round; if their leases run out first, another host calls again.
            state.withLock { $0.results = results + $0.results }
            throw error
        }
    }

    private func housekeeping() async throws {
        let dedupWindow = settings.revocation.dedupWindow.wholeMilliseconds
        let (expired, depth) = try await deliverConnection.run { [logger] connection in
            let expired = try await OutboxStatements.expire(on: connection, logger: logger)
            try await OutboxStatements.purge(dedupWindow: dedupWindow, on: connection, logger: logger)
            return (expired, try await OutboxStatements.depth(on: connection, logger: logger))
        }
        state.withLock { state in
            state.statistics.expired += expired.count
            state.statistics.depth = depth.rows
            state.statistics.oldestPendingAgeSeconds = depth.oldestAgeSeconds
        }
        let byMaximumAge = expired.filter { !$0 }.count
        if byMaximumAge > 0 {
            logger.error(
                "revocations given up after the maximum age: their tokens may still be alive",
                metadata: ["revocations": "\(byMaximumAge)"])
        }
        if expired.count > byMaximumAge {
            logger.notice("revocations given up: their tokens have expired", metadata: ["revocations": "\(expired.count - byMaximumAge)"])
        }
    }

    private func claimAndCall() async throws {
        let room = settings.revocation.concurrency - state.withLock { $0.statistics.inFlight }
        guard room > 0 else { return }
        let claim = Int64.random(in: 1...Int64.max)
        let lease = settings.lease.wholeMilliseconds
        let started = ContinuousClock.now
        let rows = try await deliverConnection.run { [settings, logger] connection in
            try await OutboxStatements.claim(
                limit: room, claim: claim, claimer: settings.hostName, lease: lease, on: connection, logger: logger)
        }
        let elapsed = ContinuousClock.now - started
        state.withLock { state in
            state.statistics.claimLatency.record(elapsed)
            state.statistics.claimed += rows.count
        }
        for row in rows { call(row) }
    }

    private func call(_ row: ClaimedRow) {
        guard let token = seal.open(row.sealed, rowKey: row.key) else {
            // Sealed under a secret this host no longer has: a host that has it may deliver it.
            let retry = OutboxResult(
                key: row.key, claim: row.claim,
                disposition: .retry(delay: settings.revocation.retryMax.wholeMilliseconds, reason: "unreadable here"))
            state.withLock { $0.statistics.unreadable += 1; $0.results.append(retry) }
            return
        }
        state.withLock { $0.statistics.inFlight += 1 }
        let started = ContinuousClock.now
        backend.revoke(token) { [self] outcome in
            var random = SystemRandomNumberGenerator()
            let disposition = OutboxDisposition.after(
                outcome, attempts: row.attempts, giveUpAt: row.giveUpAt, now: Self.wallNow(),
                settings: settings.revocation, random: &random)
            let elapsed = ContinuousClock.now - started
            state.withLock { state in
                state.statistics.inFlight -= 1
                state.statistics.backendLatency.record(elapsed)
                switch disposition {
                case .done(.revoked, _): state.statistics.revoked += 1
                case .done(.rejected, _): state.statistics.rejected += 1
                case .done(.expired, _): state.statistics.failed += 1; state.statistics.expired += 1
                case .retry: state.statistics.failed += 1; state.statistics.retried += 1
                }
                state.results.append(OutboxResult(key: row.key, claim: row.claim, disposition: disposition))
            }
            log(disposition, token: token, attempts: row.attempts, boundedByExp: row.boundedByExp)
            deliverWakeup.signal()
        }
    }

    private func log(_ disposition: OutboxDisposition, token: AccessToken, attempts: Int, boundedByExp: Bool) {
        switch disposition {
        case .done(.revoked, let status):
            RevocationLogLines.revoked(token, status: status ?? 0, logger: logger)
        case .done(.rejected, let status):
            RevocationLogLines.rejected(token, status: status ?? 0, logger: logger)
        case .done(.expired, _):
            RevocationLogLines.expired(token, attempts: attempts, byExp: boundedByExp, logger: logger)
        case .retry(let delay, let reason):
            RevocationLogLines.attemptFailed(token, reason: reason, attempt: attempts, retryIn: delay, logger: logger)
        }
    }
}
