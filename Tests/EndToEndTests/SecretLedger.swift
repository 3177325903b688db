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
        return all.filter { $0.utf8.count >= 8 ? log.contains($0) : words.contains($0) }.sorted()
    }
}
