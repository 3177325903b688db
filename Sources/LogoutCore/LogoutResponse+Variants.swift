extension LogoutResponse {
    /// `200 {"success":true}` clearing the session cookie as `loggedOut(secure:)` does, plus one
    /// more `Set-Cookie` per `Domain=` variant: a cookie of the same name planted for a parent
    /// domain is only removed by a `Set-Cookie` naming that domain. With no variants, the bytes
    /// are exactly `loggedOut(secure:)`'s.
    ///
    /// - Parameter clearSiteData: a `Clear-Site-Data` value (``clearSiteData(parsing:)``), sent
    ///   after the cookies; nil sends none.
    public static func loggedOut(secure: Bool, variants: [String], clearSiteData: String? = nil) -> LogoutResponse {
        guard !variants.isEmpty || clearSiteData != nil else { return loggedOut(secure: secure) }
        let base = "\(SessionCookie.name)=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Strict"
            + (secure ? "; Secure" : "")
        let headers = [("Set-Cookie", base)] + variants.map { ("Set-Cookie", base + "; " + $0) }
            + (clearSiteData.map { [("Clear-Site-Data", $0)] } ?? [])
        return LogoutResponse(status: "200 OK", headers: headers, body: #"{"success":true}"#)
    }

    /// Parses `CROCANTE_CLEAR_COOKIE_VARIANTS`: comma-separated `Domain=host` (RFC 6265 §5.2.3,
    /// a leading dot allowed), each becoming a `; Domain=host` attribute; nil for anything else.
    public static func cookieVariants(parsing text: String) -> [String]? {
        var variants: [String] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmedOf(" \t")
            guard !trimmed.isEmpty else { continue }
            guard trimmed.lowercased().hasPrefix("domain=") else { return nil }
            let host = trimmed.dropFirst("domain=".count)
            let labels = (host.hasPrefix(".") ? host.dropFirst() : host[...]).split(separator: ".", omittingEmptySubsequences: false)
            guard !labels.isEmpty, host.utf8.count <= 253,
                labels.allSatisfy({ label in
                    !label.isEmpty && label.utf8.count <= 63
                        && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
                })
            else { return nil }
            variants.append("Domain=" + host)
        }
        return variants.isEmpty ? nil : variants
    }
}

extension StringProtocol {
    fileprivate func trimmedOf(_ set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
