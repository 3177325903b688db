import Synchronization

/// Every token, cookie value and secret the end-to-end tests have used, across the whole run;
/// every responder's output is checked against all of it when its test's ``TestStack`` finishes.
enum SecretLedger {
    private static let recorded = Mutex<Set<String>>([Harness.secret, Harness.previousSecret, Seal.foreignSecret])

    static func record(_ values: some Sequence<String>) {
        recorded.withLock { set in
            for value in values where !value.isEmpty { set.insert(value) }
        }
    }

    static func record(_ value: String) { record([value]) }

    static var all: Set<String> { recorded.withLock { $0 } }

    /// The recorded values that appear in `log`. Values of 8 bytes or more count anywhere; a
    /// shorter one (a 1-byte token) only as a whole word or a whole `key=value` value, since
    /// short strings occur in ordinary log text.
    static func leaks(in log: String) -> [String] {
        let words = Set(
            log.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).flatMap { word -> [Substring] in
                guard let equals = word.firstIndex(of: "=") else { return [word] }
                return [word, word[word.index(after: equals)...]]
            }.map(String.init))
        // Long values by their first 8 bytes, looked up once per offset of the log: a search per
        // value took minutes once a test (the scale-out one) had recorded thousands of tokens.
        var byPrefix: [UInt64: [String]] = [:]
        var found: [String] = []
        for value in all {
            if value.utf8.count >= 8 {
                byPrefix[value.utf8.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }, default: []].append(value)
            } else if words.contains(value) {
                found.append(value)
            }
        }
        let bytes = Array(log.utf8)
        guard bytes.count >= 8 else { return found.sorted() }
        var hits = Set<String>()
        var key = bytes[0..<7].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        for offset in 0...(bytes.count - 8) {
            key = key << 8 | UInt64(bytes[offset + 7])
            guard let candidates = byPrefix[key] else { continue }
            for value in candidates where !hits.contains(value) && offset + value.utf8.count <= bytes.count
                && bytes[offset..<(offset + value.utf8.count)].elementsEqual(value.utf8)
            {
                hits.insert(value)
            }
        }
        return (found + hits).sorted()
    }
}
