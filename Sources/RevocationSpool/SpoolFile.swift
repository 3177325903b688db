import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// A system call of the spool that failed (the call's name and its errno); never holds record bytes.
typealias SpoolSystemError = SystemError

extension SystemError {
    var wouldBlock: Bool { code == EWOULDBLOCK || code == EAGAIN }
    var exists: Bool { code == EEXIST }
    var notFound: Bool { code == ENOENT }
}

/// Every file operation of RevocationSpool, and every raw pointer cast it needs, in one file;
/// each call goes through the project's one door to the kernel (`systemCall`).
enum SpoolFile {
    /// Runs `body` (a C call returning -1 on failure) through `systemCall`, retrying on EINTR.
    @discardableResult
    static func call<Result: BinaryInteger>(_ operation: String, _ body: () -> Result) throws(SpoolSystemError) -> Result {
        try systemCall(operation, retryingOnInterrupt: true, body)
    }

    /// What `fstat`/`stat` tell the spool about a file.
    struct Status {
        var isDirectory: Bool
        var isRegular: Bool
        var permissions: UInt32
        var size: Int
        var links: Int
    }

    private static func status(_ raw: stat) -> Status {
        Status(
            isDirectory: raw.st_mode & S_IFMT == S_IFDIR,
            isRegular: raw.st_mode & S_IFMT == S_IFREG,
            permissions: UInt32(raw.st_mode & 0o7777),
            size: Int(raw.st_size),
            links: Int(raw.st_nlink)
        )
    }

    /// `stat(2)` on a path (follows symbolic links, like an operator's `ls` would).
    static func status(path: String) throws(SpoolSystemError) -> Status {
        var raw = stat()
        try call("stat") { stat(path, &raw) }
        return status(raw)
    }

    /// `fstat(2)`.
    static func status(fd: Int32) throws(SpoolSystemError) -> Status {
        var raw = stat()
        try call("fstat") { fstat(fd, &raw) }
        return status(raw)
    }

    /// `open(2)` of a new file, mode 0600, close-on-exec, refusing an existing name or a symlink;
    /// readable too, for parked records read back.
    static func createExclusive(_ path: String) throws(SpoolSystemError) -> Int32 {
        try call("open") { open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600) }
    }

    /// `open(2)` of an existing file for reading and writing (adoption), close-on-exec, no symlink.
    static func openExisting(_ path: String) throws(SpoolSystemError) -> Int32 {
        try call("open") { open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
    }

    /// `flock(2)` exclusive; `wait` false adds `LOCK_NB`.
    static func lockExclusive(_ fd: Int32, wait: Bool) throws(SpoolSystemError) {
        try call("flock") { flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) }
    }

    /// One `write(2)` of the whole buffer; a short write is reported as an error (ENOSPC when
    /// the kernel gave no reason), since the caller then cuts the torn bytes off.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SpoolSystemError) {
        let written = try call("write") { bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        if written != bytes.count { throw SpoolSystemError(operation: "write (short)", code: ENOSPC) }
    }

    /// The whole file, read with `pread(2)` from offset 0 up to `limit` bytes.
    static func readAll(_ fd: Int32, limit: Int) throws(SpoolSystemError) -> [UInt8] {
        try read(fd, count: limit, at: 0)
    }

    /// Up to `count` bytes from `offset`, with `pread(2)` (fewer only at the end of the file).
    static func read(_ fd: Int32, count: Int, at offset: Int) throws(SpoolSystemError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(count, 64 * 1024))
        while bytes.count < count {
            let want = min(chunk.count, count - bytes.count)
            let position = off_t(offset + bytes.count)
            let got = try call("pread") { chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, position) } }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return bytes
    }

    /// `fdatasync(2)`.
    static func syncData(_ fd: Int32) throws(SpoolSystemError) {
        try call("fdatasync") { fdatasync(fd) }
    }

    /// `ftruncate(2)`.
    static func truncate(_ fd: Int32, to size: Int) throws(SpoolSystemError) {
        try call("ftruncate") { ftruncate(fd, off_t(size)) }
    }

    /// `unlink(2)`.
    static func remove(_ path: String) throws(SpoolSystemError) {
        try call("unlink") { unlink(path) }
    }

    /// `rename(2)`.
    static func rename(_ from: String, to: String) throws(SpoolSystemError) {
        try call("rename") { Glibc.rename(from, to) }
    }

    /// `close(2)`; errors are not actionable for the spool (the data was synced or is a duplicate).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// The names in a directory (`opendir`/`readdir`), without "." and "..".
    static func names(in directory: String) throws(SpoolSystemError) -> [String] {
        let handle = try systemCall("opendir") { opendir(directory) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `getpid(2)`.
    static var processID: Int32 { getpid() }

    /// Wall-clock milliseconds since the Unix epoch (`clock_gettime(CLOCK_REALTIME)`).
    static var wallClockMilliseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
