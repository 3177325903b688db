#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT, taken away from libfcgi's handler (which only sets a flag) and from
/// every thread, to be received by one thread with `sigwait`.
public enum ShutdownSignals {
    private static var set: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }

    /// Blocks SIGTERM and SIGINT (`pthread_sigmask`) and ignores SIGPIPE. Call first thing on the
    /// main thread, before any other thread exists, so that every thread inherits the mask.
    public static func block() {
        var set = Self.set
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Waits for SIGTERM or SIGINT (`sigwait`) and returns its number.
    public static func wait() -> Int32 {
        var set = Self.set
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    /// The conventional name of a signal this type handles, for logs.
    public static func name(_ signal: Int32) -> String {
        signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "signal \(signal)"
    }
}
