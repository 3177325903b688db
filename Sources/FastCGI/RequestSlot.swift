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

    /// Flushes, ends the request and closes the connection (`FCGX_Finish_r`), whatever nginx's
    /// keep-connection flag said: a kept connection would pin this worker while it sits idle.
    ///
    /// libfcgi's own lingering close (shut down writing, then read until EOF) restarts its poll
    /// timeout on every byte, so a peer dripping after its params would hold the worker for ever.
    /// The linger is ours instead, bounded by `lingerLimit` in all: the streams are closed first
    /// (`FCGX_FClose`, error stream then output, as `FCGX_Finish_r` does, which writes the end
    /// records), then the linger, then `FCGX_Finish_r` with `detached` set just closes.
    func finish() {
        let connection = request.pointee.ipcFd
        let flushed = FCGX_FClose(request.pointee.err) == 0 && FCGX_FClose(request.pointee.out) == 0
        if flushed, connection >= 0 { lingeringShutdown(connection, within: lingerLimit) }
        request.pointee.keepConnection = 0
        request.pointee.detached = 1
        FCGX_Finish_r(request)
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

/// Initialises libfcgi (`FCGX_Init`); call once, on the main thread, before any worker starts.
public func initializeFastCGILibrary() throws(SystemError) {
    let status = FCGX_Init()
    guard status == 0 else { throw SystemError(operation: "FCGX_Init", code: -status) }
}
