/// The application side of the server: turns a request into the response bytes.
///
/// Called on a worker thread before the response is flushed and the connection closed
/// (`FCGX_Finish_r`), so whatever it records (a revocation handed to the kernel, say) is
/// recorded before nginx sees the answer. It must never wait for anything slow.
public protocol FastCGIResponder: Sendable {
    /// The complete CGI response for `request`: header lines, a blank line, the body.
    func respond(to request: FastCGIRequest) -> [UInt8]
}
