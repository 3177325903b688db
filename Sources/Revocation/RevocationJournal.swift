import LogoutCore

/// Where a revocation is kept until the backend has given its final verdict: the durable spool,
/// or nothing at all in memory-only mode (the queue then holds a nil journal).
///
/// The queue calls `append` on the worker thread *before* the FastCGI response is finished, so
/// a crash after the answer loses nothing that was appended. Implementations count and log
/// their own errors (at most once a second) and never throw: a logout never fails because of
/// the journal.
public protocol RevocationJournal: Sendable {
    /// Hands one record to the kernel (`write(2)` has returned when this returns).
    /// Nil when it could not be written (journal full, disk full, read-only, EIO): the caller
    /// then keeps the revocation in memory only.
    func append(token: AccessToken, loggedOutAt: UnixMilliseconds) -> JournalReceipt?

    /// The revocation got a final verdict (revoked, rejected or expired): it is never to be
    /// delivered again. Cheap; may be buffered and written with the next sync.
    func complete(_ receipt: JournalReceipt)

    /// The token of a record this process appended (or adopted) and has not completed: the
    /// queue parks revocations here when its memory is full and reads them back as room frees.
    /// Nil when the record cannot be read or opened; it then stays pending for a successor.
    func readBack(_ receipt: JournalReceipt) -> AccessToken?

    /// Pending revocations in segments that no live process holds (a crashed or stopped
    /// predecessor's), now owned by this process. Each record is returned once. Called at start
    /// and then periodically by the queue.
    func adoptOrphans() -> [AdoptedRevocation]

    /// At shutdown: makes everything written durable and releases this process's segments, so
    /// that a successor adopts what is still pending. Returns how many records stay pending.
    func handOver() -> Int

    /// The journal's counters now, for the status page.
    var statistics: JournalStatistics { get }
}

/// Milliseconds since the Unix epoch, wall clock (it survives restarts, unlike a monotonic instant).
public typealias UnixMilliseconds = Int64

/// Identifies one record inside the journal; opaque to the queue.
public struct JournalReceipt: Sendable, Hashable {
    public let segment: UInt64
    public let record: UInt64

    public init(segment: UInt64, record: UInt64) {
        self.segment = segment
        self.record = record
    }
}

/// A pending revocation found in an orphaned segment.
public struct AdoptedRevocation: Sendable {
    public let token: AccessToken
    public let loggedOutAt: UnixMilliseconds
    public let receipt: JournalReceipt

    public init(token: AccessToken, loggedOutAt: UnixMilliseconds, receipt: JournalReceipt) {
        self.token = token
        self.loggedOutAt = loggedOutAt
        self.receipt = receipt
    }
}

/// What the journal has done, for the status page and the final report.
public struct JournalStatistics: Sendable, Equatable {
    /// Records written and not yet completed (this process's and adopted ones).
    public var pendingRecords = 0
    /// Bytes of every segment file in the directory.
    public var bytes = 0
    /// Records cut off or skipped at recovery: a torn tail, a bad length or checksum.
    public var corrupt = 0
    /// Records whose seal no configured secret opens (the secret was rotated away).
    public var unreadable = 0
    /// Appends that failed (disk full, read-only, EIO) or were refused because the spool was full.
    public var writeErrors = 0
    /// Appends refused because the spool reached its size limit.
    public var full = 0
    /// `fdatasync` calls made.
    public var syncs = 0
    /// Records taken over from orphaned segments.
    public var adopted = 0
    /// Records left pending for a successor at shutdown.
    public var handedOver = 0

    public init() {}
}
