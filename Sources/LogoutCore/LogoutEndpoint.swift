/// Decides what a request on the logout path gets: the response, and which token (if any) the
/// backend must revoke.
///
/// Pure: the same request always gets the same decision. Which path is the logout path is the
/// router's business, not this type's.
public struct LogoutEndpoint: Sendable {
    /// What to answer and what to revoke.
    public struct Decision: Sendable, Equatable {
        public let response: LogoutResponse
        public let tokenToRevoke: AccessToken?

        /// Whether this is a logout (a POST), whatever its cookie held.
        public var isLogout: Bool { response != .methodNotAllowed }
    }

    private let opener: SealedSession.Opener
    private let loggedOut: LogoutResponse

    public init(opener: SealedSession.Opener, secureCookie: Bool) {
        self.opener = opener
        self.loggedOut = .loggedOut(secure: secureCookie)
    }

    /// - Parameters:
    ///   - method: the CGI `REQUEST_METHOD`.
    ///   - cookieHeader: the raw `Cookie` header bytes (`HTTP_COOKIE`), if any.
    public func decide(method: String, cookieHeader: some Collection<UInt8>) -> Decision {
        guard method == "POST" else { return Decision(response: .methodNotAllowed, tokenToRevoke: nil) }
        let token = SessionCookie.value(in: cookieHeader).flatMap { opener.token(fromCookieValue: $0) }
        return Decision(response: loggedOut, tokenToRevoke: token)
    }
}
