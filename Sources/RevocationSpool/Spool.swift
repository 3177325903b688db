import Dispatch
import Logging
import LogoutCore
import Revocation
import Synchronization
import SystemCalls

/// The durable journal of revocations: append-only segment files in one directory, each record
/// sealed under the session secret's spool key, completed by done-records in the same segment.
///
/// Each process (each `Spool`) writes its own segments, holding `flock(LOCK_EX)` on each for as
/// long as it has them open; whoever can take that lock on a segment knows that its writer is
/// gone and adopts its pending records. `append` returns once `write(2)` has returned;
/// `fdatasync` is grouped on a background queue at most every `syncInterval`. Nothing here
/// throws after start-up: errors are counted and logged at most once a second.
public final class Spool: RevocationJournal {
    /// The settings it was opened with.
    public let settings: SpoolSettings
    private let seal: SpoolSeal
    private let logger: Logger
    private let state: Mutex<State>
    /// Record sequence numbers, unique across this spool's segments: each seals its record (as
    /// authenticated data and in the nonce) before the lock is taken, so that the lock covers
    /// only the write.
    private let sequences = Atomic<UInt64>(0)
    private let syncQueue = DispatchQueue(label: "crocante-logout.spool-sync")
    private let clock = ContinuousClock()
    /// Unique among the segment names of this process: with the pid and the start time, unique
    /// across processes; creation with O_EXCL checks it anyway.
    private static let nameSequence = Atomic<UInt64>(0)
    private let startMilliseconds = SpoolFile.wallClockMilliseconds
    private static var errorLogInterval: Duration { .seconds(1) }
    static let segmentPrefix = "segment-"
    static let segmentSuffix = ".crsp"
    static let temporarySuffix = ".crsp.tmp"
    static let corruptSuffix = ".corrupt"

    /// Opens the spool in `settings.directory` and starts this process's first segment.
    ///
    /// - Parameter secrets: the current session secret first, then the previous one (if any);
    ///   records are sealed with the first and opened with either.
    /// - Throws: `CrocanteError.invalidSetting` when the directory is missing, not a directory,
    ///   accessible to other users, or refuses a new file.
    public init(settings: SpoolSettings, secrets: [SessionSecret], logger: Logger) throws(CrocanteError) {
        guard !secrets.isEmpty else { throw .missingSetting("SESSION_SECRET") }
        self.settings = settings
        self.seal = SpoolSeal(secrets: secrets)
        self.logger = logger
        self.state = Mutex(State())
        let directory = settings.directory
        let status: SpoolFile.Status
        do {
            status = try SpoolFile.status(path: directory)
        } catch {
            throw .invalidSetting(settings.setting, reason: "spool directory \(directory): \(error)")
        }
        guard status.isDirectory else {
            throw .invalidSetting(settings.setting, reason: "spool directory \(directory) is not a directory")
        }
        guard status.permissions & 0o007 == 0 else {
            let mode = String(status.permissions, radix: 8)
            throw .invalidSetting(settings.setting, reason: "spool directory \(directory) is accessible to other users (mode \(mode)); make it 0700")
        }
        do {
            let segment = try openSegment(id: 1)
            state.withLock { state in
                state.segments[1] = segment
                state.activeID = 1
                state.nextSegmentID = 2
            }
        } catch {
            throw .invalidSetting(settings.setting, reason: "cannot create a segment in spool directory \(directory): \(error)")
        }
    }

    deinit {
        // Segments close (and release their locks) with their handles; what is pending stays
        // for a successor, as after a crash.
    }

    // MARK: RevocationJournal

    public func append(token: AccessToken, loggedOutAt: UnixMilliseconds) -> JournalReceipt? {
        let record = sealedRecord(token: token, loggedOutAt: loggedOutAt)
        let (receipt, logLine) = state.withLock { state -> (JournalReceipt?, String?) in
            guard !state.handedOver else { return (nil, nil) }
            if let frame = try? record.get(), state.totalBytes + frame.bytes.count > settings.maxBytes {
                state.statistics.full += 1
                state.statistics.writeErrors += 1
                return (nil, noteError(&state, "spool full (\(settings.maxBytes) bytes): token kept in memory only"))
            }
            switch appendRecord(&state, record) {
            case .success(let receipt):
                scheduleSync(&state)
                return (receipt, nil)
            case .failure(let error):
                state.statistics.writeErrors += 1
                return (nil, noteError(&state, "spool append failed (\(error)): token kept in memory only"))
            }
        }
        if let logLine { logger.error("\(logLine)") }
        return receipt
    }

    public func complete(_ receipt: JournalReceipt) {
        state.withLock { state in
            guard state.segments[receipt.segment]?.pending.removeValue(forKey: receipt.record) != nil else { return }
            state.segments[receipt.segment]?.doneBuffer.append(receipt.record)
            scheduleSync(&state)
        }
    }

    public func readBack(_ receipt: JournalReceipt) -> AccessToken? {
        let found = state.withLock { state -> (SegmentHandle, RecordPlace)? in
            guard let segment = state.segments[receipt.segment], let place = segment.pending[receipt.record] else { return nil }
            return (segment.handle, place)
        }
        guard let (handle, place) = found else { return nil }
        let bytes: [UInt8]
        do {
            bytes = try SpoolFile.read(handle.fd, count: place.length, at: place.offset)
        } catch {
            logRateLimited("spool record cannot be read back (\(error)): left for a successor")
            return nil
        }
        guard case .token(let sequence, let sealed) = SpoolFormat.readFrame(bytes), sequence == receipt.record,
            let opened = seal.open(sealed, sequence: sequence)
        else {
            logRateLimited("spool record damaged since it was written: left for a successor, who counts it corrupt")
            return nil
        }
        return opened.token
    }

    public func adoptOrphans() -> [AdoptedRevocation] {
        let ours = state.withLock { state -> Set<String>? in
            state.handedOver ? nil : Set(state.segments.values.map(\.handle.path))
        }
        guard let ours else { return [] }
        let names: [String]
        do {
            names = try SpoolFile.names(in: settings.directory).sorted()
        } catch {
            logRateLimited("spool directory cannot be read (\(error)): no segment adopted")
            return []
        }
        var adopted: [AdoptedRevocation] = []
        var foreignBytes = 0
        for name in names where name.hasPrefix(Self.segmentPrefix) {
            let path = settings.directory + "/" + name
            if name.hasSuffix(Self.temporarySuffix) {
                removeAbandonedTemporary(path)
                continue
            }
            guard name.hasSuffix(Self.segmentSuffix), !ours.contains(path) else { continue }
            switch adoptSegment(path: path, name: name) {
            case .held(let size):
                foreignBytes += size
            case .adopted(let records, let keptSize):
                adopted += records
                foreignBytes += keptSize
            }
        }
        state.withLock { state in
            state.foreignBytes = foreignBytes
            state.statistics.adopted += adopted.count
        }
        return adopted
    }

    public func handOver() -> Int {
        let alreadyHandedOver = state.withLock { state in
            defer { state.handedOver = true }
            return state.handedOver
        }
        guard !alreadyHandedOver else { return state.withLock { $0.statistics.handedOver } }
        // On the sync queue, so that no sync still holds a segment open (and locked) after we return.
        return syncQueue.sync {
            performSync()
            return state.withLock { state in
            var pending = 0
            for segment in state.segments.values {
                pending += segment.pending.count
                if segment.pending.isEmpty { try? SpoolFile.remove(segment.handle.path) }
            }
            // Dropping the handles closes the files and releases their locks for a successor.
            state.segments.removeAll()
            state.activeID = nil
            state.statistics.handedOver = pending
            return pending
            }
        }
    }

    public var statistics: JournalStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.pendingRecords = state.segments.values.reduce(0) { $0 + $1.pending.count }
            statistics.bytes = state.totalBytes
            return statistics
        }
    }

    // MARK: Writing

    /// A token record's frame under a fresh sequence number, sealed without the lock.
    private func sealedRecord(token: AccessToken, loggedOutAt: Int64) -> Result<SealedFrame, SpoolSystemError> {
        let sequence = sequences.wrappingAdd(1, ordering: .relaxed).oldValue
        guard let sealed = try? seal.seal(token: token, loggedOutAt: loggedOutAt, sequence: sequence) else {
            return .failure(SpoolSystemError(operation: "seal", code: 0))
        }
        return .success(SealedFrame(sequence: sequence, bytes: SpoolFormat.tokenFrame(sequence: sequence, sealed: sealed)))
    }

    /// Writes a sealed record to the active segment. Sequence numbers may then reach a segment
    /// out of order (two workers sealing at once): readers key records by number, not position.
    private func appendRecord(_ state: inout State, _ record: Result<SealedFrame, SpoolSystemError>) -> Result<JournalReceipt, SpoolSystemError> {
        let frame: SealedFrame
        do throws(SpoolSystemError) {
            frame = try record.get()
        } catch {
            return .failure(error)
        }
        let id: UInt64
        do throws(SpoolSystemError) {
            id = try activeSegment(&state)
        } catch {
            return .failure(error)
        }
        // Taken out of the table, not copied: a copy would share `pending` with the table's
        // segment, and the insertion below would then copy the whole dictionary, on every append
        // (14.4k Ir per append with 1,000 records pending, growing with the backlog).
        guard var segment = state.segments.removeValue(forKey: id) else {
            return .failure(SpoolSystemError(operation: "segment", code: 0))
        }
        defer { state.segments[id] = segment }
        do throws(SpoolSystemError) {
            try write(frame.bytes, to: &segment)
        } catch {
            return .failure(error)
        }
        segment.pending[frame.sequence] = RecordPlace(offset: segment.size - frame.bytes.count, length: frame.bytes.count)
        return .success(JournalReceipt(segment: id, record: frame.sequence))
    }

    /// One `write(2)`; on failure the torn bytes are cut off, or the segment is closed to
    /// further records when even that fails (a reader would stop at the tear).
    private func write(_ frame: [UInt8], to segment: inout Segment) throws(SpoolSystemError) {
        do throws(SpoolSystemError) {
            try SpoolFile.writeAll(segment.handle.fd, frame)
            segment.size += frame.count
            segment.dirty = true
        } catch {
            do {
                try SpoolFile.truncate(segment.handle.fd, to: segment.size)
            } catch {
                segment.broken = true
            }
            throw error
        }
    }

    /// The segment to write to, started anew when the current one is full or broken.
    private func activeSegment(_ state: inout State) throws(SpoolSystemError) -> UInt64 {
        if let id = state.activeID, let segment = state.segments[id], !segment.broken, segment.size < settings.segmentBytes {
            return id
        }
        let id = state.nextSegmentID
        let segment = try openSegment(id: id)
        state.nextSegmentID += 1
        state.segments[id] = segment
        state.activeID = id
        return id
    }

    /// Creates a segment under a temporary name, locks it, writes its header, and only then
    /// gives it the name adopters look for, so that nobody ever adopts a segment being born.
    private func openSegment(id: UInt64) throws(SpoolSystemError) -> Segment {
        var attempts = 0
        while true {
            let number = Self.nameSequence.wrappingAdd(1, ordering: .relaxed).newValue
            let base = "\(settings.directory)/\(Self.segmentPrefix)\(SpoolFile.processID)-\(startMilliseconds)-\(number)"
            let temporary = base + Self.temporarySuffix
            let fd: Int32
            do throws(SpoolSystemError) {
                fd = try SpoolFile.createExclusive(temporary)
            } catch where error.exists && attempts < 100 {
                attempts += 1
                continue
            }
            do throws(SpoolSystemError) {
                try SpoolFile.lockExclusive(fd, wait: false)
                try SpoolFile.writeAll(fd, SpoolFormat.header)
                try SpoolFile.rename(temporary, to: base + Self.segmentSuffix)
            } catch {
                SpoolFile.close(fd)
                try? SpoolFile.remove(temporary)
                throw error
            }
            let handle = SegmentHandle(fd: fd, path: base + Self.segmentSuffix)
            return Segment(id: id, handle: handle, size: SpoolFormat.headerSize, dirty: true)
        }
    }

    // MARK: Syncing

    private func scheduleSync(_ state: inout State) {
        guard !state.syncScheduled else { return }
        state.syncScheduled = true
        let now = clock.now
        let due = state.lastSync.map { $0 + settings.syncInterval } ?? now
        let delay = max(.zero, due - now)
        syncQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay.wholeNanoseconds))) { [weak self] in
            self?.performSync()
        }
    }

    /// Writes buffered done-records, deletes finished segments and `fdatasync`s what was written,
    /// now, on the caller's thread (waiting for a sync in progress).
    func syncNow() {
        syncQueue.sync { performSync() }
    }

    /// Writes buffered done-records, deletes segments whose records are all finished, and
    /// `fdatasync`s every segment written since the last time (outside the lock: the handles
    /// keep the files open until the sync is done). Runs only on `syncQueue`, one at a time.
    private func performSync() {
        var logLines: [String] = []
        let dirty = state.withLock { state -> [SegmentHandle] in
            state.syncScheduled = false
            state.lastSync = clock.now
            retireFinished(&state)
            var dirty: [SegmentHandle] = []
            for id in state.segments.keys.sorted() {
                guard var segment = state.segments[id] else { continue }
                if !segment.doneBuffer.isEmpty {
                    let maximumPerFrame = SpoolFormat.maximumBodySize / 8
                    var start = 0
                    while start < segment.doneBuffer.count {
                        let chunk = Array(segment.doneBuffer[start..<min(start + maximumPerFrame, segment.doneBuffer.count)])
                        start += chunk.count
                        do {
                            try write(SpoolFormat.doneFrame(sequences: chunk), to: &segment)
                        } catch {
                            // Lost done-records only mean a successor may revoke these again.
                            state.statistics.writeErrors += 1
                            if let line = noteError(&state, "spool done-record write failed (\(error))") { logLines.append(line) }
                            break
                        }
                    }
                    segment.doneBuffer.removeAll()
                }
                if segment.dirty {
                    dirty.append(segment.handle)
                    segment.dirty = false
                }
                state.segments[id] = segment
            }
            return dirty
        }
        var synced = 0
        for handle in dirty {
            do {
                try SpoolFile.syncData(handle.fd)
                synced += 1
            } catch {
                state.withLock { state in
                    state.statistics.writeErrors += 1
                    if let line = noteError(&state, "spool fdatasync failed (\(error))") { logLines.append(line) }
                }
            }
        }
        state.withLock { $0.statistics.syncs += synced }
        for line in logLines { logger.error("\(line)") }
    }

    /// Deletes our segments whose records are all finished, except the active one unless it is
    /// full-sized (then a new one takes its place). Unlinked before closed, so no adopter can
    /// lock it in between (an adopter that opened it earlier sees no links and leaves it).
    private func retireFinished(_ state: inout State) {
        if !state.handedOver, let id = state.activeID, let active = state.segments[id],
            active.pending.isEmpty, active.size >= settings.segmentBytes
        {
            state.activeID = nil
            do {
                _ = try activeSegment(&state)
            } catch {
                state.activeID = id
            }
        }
        for (id, segment) in state.segments where segment.pending.isEmpty && id != state.activeID {
            do {
                try SpoolFile.remove(segment.handle.path)
                state.segments[id] = nil
            } catch {
                logger.debug("spool segment not deleted yet: \(error)")
            }
        }
    }

    // MARK: Adoption

    private enum Adoption {
        /// A live process holds it (or it is not ours to read): its size.
        case held(size: Int)
        /// Read: the records now ours, and the size of what is left of the file (0 once deleted).
        case adopted([AdoptedRevocation], keptSize: Int)
    }

    private func adoptSegment(path: String, name: String) -> Adoption {
        let fd: Int32
        do {
            fd = try SpoolFile.openExisting(path)
        } catch {
            return .held(size: 0)  // gone meanwhile (deleted by its finished writer)
        }
        defer { SpoolFile.close(fd) }
        let status: SpoolFile.Status
        do {
            try SpoolFile.lockExclusive(fd, wait: false)
            status = try SpoolFile.status(fd: fd)
        } catch {
            return .held(size: (try? SpoolFile.status(fd: fd).size) ?? 0)
        }
        guard status.isRegular, status.links > 0 else { return .held(size: 0) }
        let bytes: [UInt8]
        do {
            bytes = try SpoolFile.readAll(fd, limit: status.size)
        } catch {
            logRateLimited("spool segment \(name) cannot be read (\(error)): left for a later attempt")
            return .held(size: status.size)
        }
        let scan = SpoolFormat.scan(bytes)
        guard scan.headerValid else {
            // Not a segment we can read (damaged header, or a future version): set aside, kept for a person.
            state.withLock { $0.statistics.corrupt += 1 }
            try? SpoolFile.rename(path, to: path + Self.corruptSuffix)
            logger.warning("spool segment \(name) has no valid header: renamed to \(name + Self.corruptSuffix), counted corrupt")
            return .held(size: 0)
        }
        if scan.validLength < bytes.count {
            // A torn tail: cut off now, so that done-records written below are readable.
            try? SpoolFile.truncate(fd, to: scan.validLength)
        }
        var done = Set<UInt64>()
        var records: [(sequence: UInt64, sealed: [UInt8])] = []
        for frame in scan.frames {
            switch frame {
            case .token(let sequence, let sealed): records.append((sequence, sealed))
            case .done(let sequences): done.formUnion(sequences)
            }
        }
        var adopted: [AdoptedRevocation] = []
        var moved: [UInt64] = []
        var unreadable = 0
        var failure: SpoolSystemError?
        var seen = Set<UInt64>()
        for record in records where !done.contains(record.sequence) && seen.insert(record.sequence).inserted {
            guard let opened = seal.open(record.sealed, sequence: record.sequence) else {
                unreadable += 1
                continue
            }
            // Re-appended to our segment past the size limit: the orphan goes once it is moved,
            // so a spool full of orphans can still be drained.
            let copy = sealedRecord(token: opened.token, loggedOutAt: opened.loggedOutAt)
            let result = state.withLock { state -> Result<JournalReceipt, SpoolSystemError> in
                state.handedOver
                    ? .failure(SpoolSystemError(operation: "adopt after hand-over", code: 0))
                    : appendRecord(&state, copy)
            }
            switch result {
            case .success(let receipt):
                adopted.append(AdoptedRevocation(token: opened.token, loggedOutAt: opened.loggedOutAt, receipt: receipt))
                moved.append(record.sequence)
            case .failure(let error):
                failure = error
            }
            if failure != nil { break }
        }
        // Our copies must be on disk before the orphan goes (else a power loss loses both).
        syncNow()
        state.withLock { state in
            state.statistics.corrupt += scan.corrupt
            state.statistics.unreadable += unreadable
        }
        if scan.corrupt > 0 || unreadable > 0 {
            logger.warning("spool segment \(name): \(scan.corrupt) corrupt and \(unreadable) unreadable records skipped")
        }
        if let failure {
            // Keep the orphan for a later attempt, marking what we took as done in it.
            if !moved.isEmpty {
                try? SpoolFile.writeAll(fd, SpoolFormat.doneFrame(sequences: moved))
                try? SpoolFile.syncData(fd)
            }
            logRateLimited("spool segment \(name) only partly adopted (\(failure)): the rest later")
            return .adopted(adopted, keptSize: (try? SpoolFile.status(fd: fd).size) ?? status.size)
        }
        do {
            try SpoolFile.remove(path)
        } catch {
            // Still linked: mark everything taken as done, so the next adopter does not repeat it.
            if !moved.isEmpty { try? SpoolFile.writeAll(fd, SpoolFormat.doneFrame(sequences: moved)) }
            return .adopted(adopted, keptSize: status.size)
        }
        if !adopted.isEmpty {
            logger.notice("spool: adopted \(adopted.count) pending revocations from \(name)")
        }
        return .adopted(adopted, keptSize: 0)
    }

    /// A segment whose creator died before naming it has no records: deleted once nobody holds it.
    private func removeAbandonedTemporary(_ path: String) {
        guard let fd = try? SpoolFile.openExisting(path) else { return }
        defer { SpoolFile.close(fd) }
        guard (try? SpoolFile.lockExclusive(fd, wait: false)) != nil else { return }
        try? SpoolFile.remove(path)
    }

    // MARK: Logging

    /// The line to log for an error now, or nil when one was logged less than a second ago
    /// (the count since then goes into the next line).
    private func noteError(_ state: inout State, _ message: String) -> String? {
        state.errorsSinceLog += 1
        let now = clock.now
        guard state.lastErrorLog.map({ now - $0 >= Self.errorLogInterval }) ?? true else { return nil }
        defer {
            state.lastErrorLog = now
            state.errorsSinceLog = 0
        }
        return "\(message) (\(state.errorsSinceLog) spool errors since the last line)"
    }

    private func logRateLimited(_ message: String) {
        if let line = state.withLock({ noteError(&$0, message) }) { logger.error("\(line)") }
    }
}

extension Spool {
    /// An open segment file; closing it (when the last reference goes) releases its lock.
    final class SegmentHandle: Sendable {
        let fd: Int32
        let path: String

        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        deinit { SpoolFile.close(fd) }
    }

    /// A token record ready to write: its sequence number and its whole frame.
    struct SealedFrame {
        let sequence: UInt64
        let bytes: [UInt8]
    }

    /// Where a token record lies in its segment file.
    struct RecordPlace {
        var offset: Int
        var length: Int
    }

    /// One of our segments.
    struct Segment {
        let id: UInt64
        let handle: SegmentHandle
        /// Bytes written and kept (a failed write is cut off again).
        var size: Int
        /// Token records without a done-record, by sequence number: where each one lies, so that
        /// a revocation parked on disk can be read back.
        var pending: [UInt64: RecordPlace] = [:]
        /// Completions not yet written: they go out with the next sync.
        var doneBuffer: [UInt64] = []
        /// Written since the last `fdatasync`.
        var dirty = false
        /// A write failed and its bytes could not be cut off: no more records go here.
        var broken = false
    }

    struct State {
        var segments: [UInt64: Segment] = [:]
        var activeID: UInt64?
        var nextSegmentID: UInt64 = 1
        /// Segment bytes of other processes (live or not yet adopted), as of the last scan.
        var foreignBytes = 0
        var statistics = JournalStatistics()
        var syncScheduled = false
        var lastSync: ContinuousClock.Instant?
        var handedOver = false
        var lastErrorLog: ContinuousClock.Instant?
        var errorsSinceLog = 0

        var totalBytes: Int { segments.values.reduce(foreignBytes) { $0 + $1.size } }
    }
}
