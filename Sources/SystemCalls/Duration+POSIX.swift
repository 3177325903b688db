#if canImport(Glibc)
import Glibc
#endif

extension Duration {
    /// Whole nanoseconds, truncated: for dispatch deadlines and for instants kept in an atomic.
    public var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension timeval {
    /// `duration` as seconds and microseconds, for `SO_RCVTIMEO` and friends.
    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}

extension timespec {
    /// `duration` as seconds and nanoseconds, for `nanosleep`.
    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    }
}

/// Sleeps the calling thread for `duration` (`nanosleep`), resuming after signal interruptions.
public func sleepThread(for duration: Duration) {
    var request = timespec(duration)
    var remaining = timespec()
    while true {
        do {
            try systemCall("nanosleep") { nanosleep(&request, &remaining) }
            return
        } catch where error.code == EINTR {
            request = remaining
        } catch {
            return
        }
    }
}
