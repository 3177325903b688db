extension LogoutResponse {
    /// The directives `Clear-Site-Data` defines (W3C Clear Site Data, §3.1) and `*` for all of
    /// them. Spelled exactly: browsers ignore a directive in another case.
    public static let clearSiteDataDirectives = ["cache", "cookies", "storage", "executionContexts", "*"]

    /// Parses `CROCANTE_CLEAR_SITE_DATA`: comma-separated directives, bare or already quoted,
    /// each at most once; returns the header value with every directive quoted
    /// (`"cookies", "storage"`), or nil for anything else (an empty list included).
    public static func clearSiteData(parsing text: String) -> String? {
        var directives: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            var directive = Substring(item)
            while directive.first == " " || directive.first == "\t" { directive = directive.dropFirst() }
            while directive.last == " " || directive.last == "\t" { directive = directive.dropLast() }
            if directive.count >= 2, directive.first == "\"", directive.last == "\"" { directive = directive.dropFirst().dropLast() }
            guard clearSiteDataDirectives.contains(String(directive)), !directives.contains(String(directive)) else { return nil }
            directives.append(String(directive))
        }
        return directives.isEmpty ? nil : directives.map { "\"\($0)\"" }.joined(separator: ", ")
    }
}
