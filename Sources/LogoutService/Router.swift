import FastCGI
import LogoutCore

/// The one place that decides which page a request gets: the logout, the status page, ping,
/// or 404 for any other path that reaches the responder. Pure, like the logout decision.
public struct Router: Sendable {
    public enum Route: Sendable, Equatable {
        /// The logout path: its response and the token to revoke, if any.
        case logout(LogoutEndpoint.Decision)
        /// The counters, in the format the query asks for (any method, as php-fpm's status page).
        case status(StatusReport.Format)
        /// Liveness (any method).
        case ping
        /// Test only (``Configuration/testWedgePath``): park every worker.
        case wedge
        case notFound
    }

    private let logoutPath: String
    private let statusPath: String
    private let pingPath: String
    private let wedgePath: String?
    private let endpoint: LogoutEndpoint

    public init(logoutPath: String, statusPath: String, pingPath: String, wedgePath: String? = nil, endpoint: LogoutEndpoint) {
        self.wedgePath = wedgePath
        self.logoutPath = logoutPath
        self.statusPath = statusPath
        self.pingPath = pingPath
        self.endpoint = endpoint
    }

    public init(configuration: Configuration) {
        self.init(
            logoutPath: configuration.logoutPath, statusPath: configuration.statusPath, pingPath: configuration.pingPath,
            wedgePath: configuration.testWedgePath,
            endpoint: LogoutEndpoint(
                opener: SealedSession.Opener(secrets: configuration.sessionSecrets), secureCookie: configuration.secureCookie,
                clearCookieVariants: configuration.clearCookieVariants, clearSiteData: configuration.clearSiteData))
    }

    /// Paths are compared exactly: nginx has already decoded and normalised `DOCUMENT_URI`.
    public func route(_ request: FastCGIRequest) -> Route {
        switch request.path {
        case logoutPath: return .logout(endpoint.decide(method: request.method, cookieHeader: request.cookieHeader))
        case statusPath: return .status(StatusReport.Format(query: request.query))
        case pingPath: return .ping
        case let path where path == wedgePath: return .wedge
        default: return .notFound
        }
    }
}

extension LogoutResponse {
    /// `404` for any path this responder does not serve.
    public static let notFound = LogoutResponse(
        status: "404 Not Found",
        headers: [],
        body: #"{"success":false,"error":"not found"}"#
    )

    /// The ping path's answer.
    public static let pong = LogoutResponse(status: "200 OK", contentType: "text/plain", body: "pong")
}
