/// Bytes of the documented contract (shared/reference/logout-endpoint.txt) that many tests expect.
enum Contract {
    /// The `Set-Cookie` value that clears the session outside production.
    static let clearedCookie =
        "crocante_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict"
    /// The same in production (`APP_ENV=production`, the stack's default).
    static let clearedSecureCookie = clearedCookie + "; Secure"
}
