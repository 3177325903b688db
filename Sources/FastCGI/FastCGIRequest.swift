/// What the responder reads from one FastCGI request, copied into Swift before libfcgi frees
/// the request's parameters at `FCGX_Finish_r`.
public struct FastCGIRequest: Sendable, Equatable {
    /// `REQUEST_METHOD`.
    public var method: String
    /// `DOCUMENT_URI` (the decoded path without query), or `SCRIPT_NAME` when nginx sent no `DOCUMENT_URI`.
    public var path: String
    /// `QUERY_STRING`, empty when absent.
    public var query: String
    /// `HTTP_COOKIE` as raw bytes: cookie parsing must not depend on them being valid UTF-8.
    public var cookieHeader: [UInt8]

    public init(method: String, path: String, query: String = "", cookieHeader: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.cookieHeader = cookieHeader
    }
}
