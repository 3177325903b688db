import LogoutCore

/// The `Retry-After` response header (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
enum RetryAfter {
    /// How long to wait, in milliseconds from `now`; nil when the value is neither form.
    /// A date in the past means no wait (0).
    static func parse(_ value: String, now: UnixMilliseconds) -> Int64? {
        let text = value.trimmingSpaces
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Huge values saturate: the caller clamps to its cap anyway.
            guard text.utf8.count <= 12, let seconds = Int64(text) else { return Int64.max / 2 }
            return seconds * 1000
        }
        guard let date = HTTPDate.parse(text) else { return nil }
        return max(0, date * 1000 - now)
    }
}

/// HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms that a
/// recipient must also accept. Returns seconds since the epoch.
enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    static func parse(_ text: String) -> Int64? {
        let words = text.split(separator: " ").map(String.init)
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if words.count == 6, words[0].hasSuffix(","), words[5] == "GMT" {
            return make(day: words[1], month: words[2], year: words[3], time: words[4])
        }
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        if words.count == 4, words[0].hasSuffix(","), words[3] == "GMT" {
            let date = words[1].split(separator: "-").map(String.init)
            guard date.count == 3, date[2].count == 2, let short = Int(date[2]) else { return nil }
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            let year = short < 70 ? 2000 + short : 1900 + short
            return make(day: date[0], month: date[1], year: String(year), time: words[2])
        }
        // asctime: "Sun Nov  6 08:49:37 1994" (the double space collapses in the split)
        if words.count == 5 {
            return make(day: words[2], month: words[1], year: words[4], time: words[3])
        }
        return nil
    }

    private static func make(day: String, month: String, year: String, time: String) -> Int64? {
        let clock = time.split(separator: ":", omittingEmptySubsequences: false)
        guard day.count <= 2, year.count == 4,
            let day = Int64(day), let year = Int64(year), let monthIndex = months.firstIndex(of: month.lowercased()),
            clock.count == 3, clock.allSatisfy({ $0.count == 2 }),
            let hour = Int64(clock[0]), let minute = Int64(clock[1]), let second = Int64(clock[2]),
            (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        let days = daysFromCivil(year: year, month: Int64(monthIndex) + 1, day: day)
        return days * 86_400 + hour * 3_600 + minute * 60 + second
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        let bytes = Array(utf8)
        guard let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
            let last = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
