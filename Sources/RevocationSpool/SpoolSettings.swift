/// How the durable spool is set up; built once from the configuration at start-up.
///
/// | key | setting | type | default |
/// | --- | --- | --- | --- |
/// | `directory` | `CROCANTE_SPOOL_DIR` / `--spool-dir`, or `$STATE_DIRECTORY` under systemd | path | none: memory-only |
/// | `syncInterval` | `CROCANTE_SPOOL_SYNC_MS` | milliseconds, 0...10000 | 50 |
/// | `maxBytes` | `CROCANTE_SPOOL_MAX_BYTES` | bytes, at least 1 MiB | 256 MiB |
/// | `segmentBytes` | (not a setting) | bytes | 4 MiB |
///
/// The directory must exist, be a directory we can write, and not be accessible to "other"
/// (systemd's `StateDirectory=` with `StateDirectoryMode=0700` makes it so).
public struct SpoolSettings: Sendable, Equatable {
    /// The default `fdatasync` grouping interval. Measured on this project's machine (ext4 on a
    /// shared virtual disk, /work and /tmp alike, load average ~10): fdatasync after a small append
    /// takes 0.3-4 ms at the median, 12-60 ms at p99. 50 ms caps syncs at 20/s per process (a few
    /// percent of the disk's time even at p99), keeps them off the request path, and bounds what a
    /// power loss can take to 50 ms of logouts plus one sync. A crash of the process loses nothing
    /// whatever the interval: records are in the kernel once `append` returns.
    public static let defaultSyncInterval: Duration = .milliseconds(50)
    /// The default size limit of all segment files together: ~1.7 million tokens of 100 bytes.
    public static let defaultMaxBytes = 256 * 1024 * 1024
    /// The default segment size before a new one is started: small enough that a finished
    /// segment is deleted soon, large enough that rotation (an open and an unlink) is rare.
    public static let defaultSegmentBytes = 4 * 1024 * 1024

    /// The spool directory.
    public var directory: String
    /// `fdatasync` runs at most this often, on a background queue, never on the request path.
    public var syncInterval: Duration
    /// Past this many bytes of segment files in the directory, `append` refuses new tokens.
    public var maxBytes: Int
    /// A segment larger than this is closed to new records and a new one started.
    public var segmentBytes: Int
    /// The configuration name blamed when the directory is refused (e.g. `CROCANTE_SPOOL_DIR`).
    public var setting: String

    public init(
        directory: String,
        syncInterval: Duration = Self.defaultSyncInterval,
        maxBytes: Int = Self.defaultMaxBytes,
        segmentBytes: Int = Self.defaultSegmentBytes,
        setting: String = "CROCANTE_SPOOL_DIR"
    ) {
        self.directory = directory
        self.syncInterval = syncInterval
        self.maxBytes = maxBytes
        self.segmentBytes = segmentBytes
        self.setting = setting
    }
}
