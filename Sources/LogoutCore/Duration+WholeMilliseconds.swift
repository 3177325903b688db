extension Duration {
    /// Whole milliseconds, truncated: the unit the revocation queue counts time in, and the one
    /// settings given in milliseconds print in.
    package var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
