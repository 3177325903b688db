/// Decides what a request on the logout path gets: the response, and which token (if any) the
/// backend must revoke.
///
/// Pure: the same request always gets the same decision. Which path is the logout path is the
/// router's business, not this type's.
public struct LogoutEndpoint: Sendable {
    /// What to answer and what to revoke.
    public struct Decision: Sendable, Equatable {
        public let response: LogoutResponse
        /// Every distinct token among the session cookies that opened, in header order
        /// (at most `SessionCookie.valueLimit`).
        public let tokensToRevoke: [AccessToken]
        /// Why each present session cookie value that did not open failed, for the counters.
        public let failures: [SealedSession.OpenFailure]

        public init(response: LogoutResponse, tokensToRevoke: [AccessToken], failures: [SealedSession.OpenFailure] = []) {
            self.response = response
            self.tokensToRevoke = tokensToRevoke
            self.failures = failures
        }

        /// The first token, as the origin revokes it.
        public var tokenToRevoke: AccessToken? { tokensToRevoke.first }

        /// Whether this is a logout (a POST), whatever its cookie held.
        public var isLogout: Bool { response != .methodNotAllowed }
    }

    private let opener: SealedSession.Opener
    private let loggedOut: LogoutResponse

    /// - Parameter clearCookieVariants: `Domain=` attributes for one more cleared cookie each
    ///   (`CROCANTE_CLEAR_COOKIE_VARIANTS`); none keeps the origin's answer byte for byte.
    /// - Parameter clearSiteData: a `Clear-Site-Data` header value (`CROCANTE_CLEAR_SITE_DATA`);
    ///   nil, the default, sends none. Rendered into the response bytes here, once.
    public init(opener: SealedSession.Opener, secureCookie: Bool, clearCookieVariants: [String] = [], clearSiteData: String? = nil) {
        self.opener = opener
        self.loggedOut = .loggedOut(secure: secureCookie, variants: clearCookieVariants, clearSiteData: clearSiteData)
    }

    /// - Parameters:
    ///   - method: the CGI `REQUEST_METHOD`.
    ///   - cookieHeader: the raw `Cookie` header bytes (`HTTP_COOKIE`), if any.
    ///
    /// Every `crocante_session` value is tried, not only the first as the origin does: a cookie
    /// tossed in by a sibling subdomain comes first and would hide the real session.
    public func decide(method: String, cookieHeader: some Collection<UInt8>) -> Decision {
        guard method == "POST" else { return Decision(response: .methodNotAllowed, tokensToRevoke: []) }
        var tokens: [AccessToken] = []
        var failures: [SealedSession.OpenFailure] = []
        for value in SessionCookie.values(in: cookieHeader) {
            switch opener.open(cookieValue: value) {
            case .success(let token): if !tokens.contains(token) { tokens.append(token) }
            case .failure(let failure): failures.append(failure)
            }
        }
        return Decision(response: loggedOut, tokensToRevoke: tokens, failures: failures)
    }
}
