import CFastCGI
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// One worker's `FCGX_Request`: heap-allocated because libfcgi keeps pointers into it, and
/// used by one thread only.
///
/// libfcgi never accepts here (its listen socket is -1): the server accepts each connection
/// itself and hands the descriptor over, so accept errors, shutdown and socket creation stay
/// under our control.
final class RequestSlot {
    private let request: UnsafeMutablePointer<FCGX_Request>

    /// Calls `FCGX_InitRequest` with no listen socket.
    init() {
        request = .allocate(capacity: 1)
        FCGX_InitRequest(request, -1, 0)
    }

    deinit {
        FCGX_Free(request, 1)
        request.deallocate()
    }

    /// Reads the begin record and parameters from `connection` (`FCGX_Accept_r`) and copies
    /// out what the responder needs. On failure libfcgi has already closed the connection.
    func begin(connection: Int32) throws(SystemError) -> FastCGIRequest {
        // keepConnection = 1 stops FCGX_Accept_r's opening FCGX_Finish_r from closing the fd we
        // set; the begin record then sets it from nginx's flags.
        request.pointee.keepConnection = 1
        request.pointee.ipcFd = connection
        // libfcgi's lingering close select()s on the fd: past FD_SETSIZE that writes out of bounds.
        request.pointee.detached = connection >= FD_SETSIZE ? 1 : 0
        let status = FCGX_Accept_r(request)
        guard status >= 0 else { throw SystemError(operation: "FCGX_Accept_r", code: -status) }
        return FastCGIRequest(
            method: parameter("REQUEST_METHOD").map { String(cString: $0) } ?? "",
            path: (parameter("DOCUMENT_URI") ?? parameter("SCRIPT_NAME")).map { String(cString: $0) } ?? "",
            query: parameter("QUERY_STRING").map { String(cString: $0) } ?? "",
            cookieHeader: parameter("HTTP_COOKIE").map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? []
        )
    }

    /// Writes `bytes` to the request's stdout stream (`FCGX_PutStr`).
    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = FCGX_PutStr(buffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(buffer.count), request.pointee.out)
        }
    }

    /// Flushes and ends the request (`FCGX_Finish_r`). With `keep`, when nginx asked to keep
    /// the connection and the request's input has fully arrived, the connection stays open for
    /// the next request and this returns true; else it is closed (false).
    ///
    /// The input is read to its end *before* the end-of-request record goes out: nginx sends
    /// its next request only after that record, so libfcgi's buffered reader cannot swallow
    /// any of it. The connection is non-blocking, so input not there yet fails the read at once.
    ///
    /// Closing: with the whole input read, nginx has nothing more to send, so the connection is
    /// closed at once (no unread input, so no reset that could destroy the answer). Only when
    /// input is still missing does it linger: the streams are closed first (`FCGX_FClose`, error
    /// stream then output, as `FCGX_Finish_r` does, which writes the end records), then writing
    /// is shut down and the rest read until the peer closes, bounded by `lingerLimit` in all
    /// (libfcgi's own lingering close restarts its timeout on every byte, so a peer dripping
    /// input would hold the worker for ever), then `FCGX_Finish_r` with `detached` set just closes.
    func finish(keep: Bool = false) -> Bool {
        let connection = request.pointee.ipcFd
        let inputComplete = discardInput()
        let flushed = FCGX_FClose(request.pointee.err) == 0 && FCGX_FClose(request.pointee.out) == 0
        if keep && request.pointee.keepConnection != 0 && inputComplete && flushed {
            // keepConnection is still set: libfcgi frees the streams and params, keeps the fd,
            // which is then the caller's (to park, and to hand to any worker's slot).
            FCGX_Finish_r(request)
            request.pointee.ipcFd = -1
            return true
        }
        if flushed && !inputComplete, connection >= 0 { lingeringShutdown(connection, within: lingerLimit) }
        request.pointee.keepConnection = 0
        request.pointee.detached = 1
        FCGX_Finish_r(request)
        return false
    }

    /// Closes a connection refused before libfcgi read it.
    func close(_ connection: Int32) {
        Glibc.close(connection)
        if request.pointee.ipcFd == connection { request.pointee.ipcFd = -1 }
    }

    /// Reads and discards the request's input to its end (the empty stdin record); false when
    /// it is not all there yet, failed, or is longer than a logout's input can be. Usually no
    /// system call: nginx sends the request at once, and libfcgi's first read took all of it.
    private func discardInput() -> Bool {
        // On the stack: this runs for every request.
        let total = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
            var total = 0
            while total <= inputDrainLimit {
                let count = FCGX_GetStr(buffer.baseAddress, Int32(buffer.count), request.pointee.in)
                guard count > 0 else { break }
                total += Int(count)
            }
            return total
        }
        return total <= inputDrainLimit && FCGX_GetError(request.pointee.in) == 0 && FCGX_HasSeenEOF(request.pointee.in) != 0
    }

    private func parameter(_ name: String) -> UnsafeMutablePointer<CChar>? {
        FCGX_GetParam(name, request.pointee.envp)
    }
}

@available(*, unavailable)
extension RequestSlot: Sendable {}

/// The longest a worker waits, after answering, for the peer to finish sending and close
/// (nginx closes as soon as it has the answer).
private let lingerLimit = Duration.seconds(1)

/// The most input the drain after an answer reads: nginx.conf.example refuses bodies
/// over 16 KiB, and a logout has none.
private let inputDrainLimit = 64 * 1024

/// Initialises libfcgi (`FCGX_Init`); call once, on the main thread, before any worker starts.
public func initializeFastCGILibrary() throws(SystemError) {
    let status = FCGX_Init()
    guard status == 0 else { throw SystemError(operation: "FCGX_Init", code: -status) }
}
