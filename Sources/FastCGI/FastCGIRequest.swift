/// What the responder reads from one FastCGI request, copied into Swift before libfcgi frees
/// the request's parameters at `FCGX_Finish_r`.
public struct FastCGIRequest: Sendable {
    /// `REQUEST_METHOD`.
    public var method: String
    /// `DOCUMENT_URI` (the decoded path without query), or `SCRIPT_NAME` when nginx sent no `DOCUMENT_URI`.
    public var path: String
    /// `QUERY_STRING`, empty when absent.
    public var query: String
    /// `HTTP_COOKIE` as raw bytes: cookie parsing must not depend on them being valid UTF-8.
    public var cookieHeader: [UInt8]

    public init(method: String, path: String, query: String, cookieHeader: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.cookieHeader = cookieHeader
    }
}

/// The application side of the server: turns a request into response bytes, and gets a
/// second call once the response has left, for work the response must not wait for.
public protocol FastCGIResponder: Sendable {
    /// Work to do after the response is sent, such as a backend call.
    associatedtype FollowUp

    /// The complete CGI response (header lines, blank line, body) for `request`,
    /// and any work to run after it has been sent.
    func respond(to request: FastCGIRequest) -> (response: [UInt8], followUp: FollowUp?)

    /// Runs `followUp` after `FCGX_Finish_r` has flushed and closed the connection.
    func afterResponse(_ followUp: FollowUp)
}
