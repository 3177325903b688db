/// A CGI response rendered to bytes once, at start-up; the logout's own responses are here,
/// the router adds its pages (status, ping, not found).
///
/// A CGI response is header lines, a blank line and the body; nginx turns the `Status` line
/// into the HTTP status line.
public struct LogoutResponse: Sendable, Equatable {
    /// The complete CGI response: headers, blank line, body.
    public let bytes: [UInt8]

    /// Renders a response; every one carries `Content-Length` and `Cache-Control: no-store`.
    public init(status: String, contentType: String = "application/json", headers: [(String, String)] = [], body: String) {
        var text = "Status: \(status)\r\n"
        text += "Content-Type: \(contentType)\r\n"
        text += "Content-Length: \(body.utf8.count)\r\n"
        text += "Cache-Control: no-store\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n" + body
        bytes = Array(text.utf8)
    }

    /// `200 {"success":true}` with the session cookie cleared; `secure` adds `; Secure`.
    public static func loggedOut(secure: Bool) -> LogoutResponse {
        let clearedCookie =
            "\(SessionCookie.name)=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict"
            + (secure ? "; Secure" : "")
        return LogoutResponse(status: "200 OK", headers: [("Set-Cookie", clearedCookie)], body: #"{"success":true}"#)
    }

    /// `405` for any method but POST on the logout path; the cookie is left alone.
    public static let methodNotAllowed = LogoutResponse(
        status: "405 Method Not Allowed",
        headers: [("Allow", "POST")],
        body: #"{"success":false,"error":"method not allowed"}"#
    )
}
