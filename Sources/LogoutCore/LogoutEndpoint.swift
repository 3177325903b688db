/// Decides what one request gets: the response, and which token (if any) the backend must revoke.
///
/// Pure: the same request always gets the same decision. The caller sends the response first
/// and hands the token to the revocation queue after.
public struct LogoutEndpoint: Sendable {
    /// What to answer and what to revoke.
    public struct Decision: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// A POST on the logout path, whatever its cookie held.
            case logout
            case methodNotAllowed
            case notFound
        }

        public let kind: Kind
        public let response: LogoutResponse
        public let tokenToRevoke: AccessToken?
    }

    private let path: String
    private let opener: SealedSession.Opener
    private let loggedOut: LogoutResponse

    public init(path: String, opener: SealedSession.Opener, secureCookie: Bool) {
        self.path = path
        self.opener = opener
        self.loggedOut = .loggedOut(secure: secureCookie)
    }

    /// - Parameters:
    ///   - method: the CGI `REQUEST_METHOD`.
    ///   - path: the request path without its query (`DOCUMENT_URI`).
    ///   - cookieHeader: the raw `Cookie` header bytes (`HTTP_COOKIE`), if any.
    public func decide(method: String, path: String, cookieHeader: some Collection<UInt8>) -> Decision {
        guard path == self.path else { return Decision(kind: .notFound, response: .notFound, tokenToRevoke: nil) }
        guard method == "POST" else {
            return Decision(kind: .methodNotAllowed, response: .methodNotAllowed, tokenToRevoke: nil)
        }
        let token = SessionCookie.value(in: cookieHeader).flatMap { opener.token(fromCookieValue: $0) }
        return Decision(kind: .logout, response: loggedOut, tokenToRevoke: token)
    }
}
