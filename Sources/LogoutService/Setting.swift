import LogoutCore

/// How one setting is named and documented: everything but its value type. The table of them
/// (``Settings/all``) is where parsing, `--help`, `check-config`, the README's configuration
/// table and `deploy/env.example` all come from.
public struct SettingDeclaration: Sendable {
    /// The environment variable.
    public let name: String
    /// The long flag without its dashes; nil for secrets (a command line is visible to every
    /// user of the host).
    public let flag: String?
    /// Also read as `NEXT_PUBLIC_<name>`, the spelling of the origin's `.env` files. Never for a
    /// secret: Next.js ships `NEXT_PUBLIC_*` values to the browser.
    public let acceptsNextPublicSpelling: Bool
    /// For a secret, the systemd credential it is read from as a last resort; secrets are also
    /// read from the file `<name>_FILE` names, and never printed.
    public let credential: String?
    /// What values are accepted, for the docs.
    public let accepted: String
    /// The default as the docs show it: a value, `required`, `unset`, or how it is computed.
    public let defaultText: String
    /// What it does, one sentence.
    public let help: String
    /// For a required setting, the value `deploy/env.example` shows.
    public let example: String?

    public var isSecret: Bool { credential != nil }
}

/// What a default may depend on.
public struct SettingDefaults: Sendable {
    public var processorCount: Int
    /// `$STATE_DIRECTORY`, which systemd sets from the unit's `StateDirectory=`.
    public var stateDirectory: String?
}

/// A setting with its value type: how text becomes a value, its default, and how the value is
/// shown by `check-config`.
public struct Setting<Value: Sendable>: Sendable {
    public let declaration: SettingDeclaration
    /// The value when the setting is absent; nil when it is required.
    let defaultValue: @Sendable (SettingDefaults) -> Value?
    /// The value of `text`, or why it is refused (without the text: the reader quotes it).
    let parse: @Sendable (String) -> Result<Value, SettingRefusal>
    /// How `check-config` shows the value.
    let render: @Sendable (Value) -> String
}

/// Why a text is refused, completing "NAME is invalid: \"text\" …".
public struct SettingRefusal: Error, Sendable {
    public let reason: String
}

extension Setting {
    /// A value from a fixed set of words.
    static func choice(
        _ declaration: SettingDeclaration, default defaultValue: Value, _ make: @escaping @Sendable (String) -> Value?,
        render: @escaping @Sendable (Value) -> String
    ) -> Setting {
        Setting(
            declaration: declaration, defaultValue: { _ in defaultValue },
            parse: { text in make(text).map { .success($0) } ?? .failure(SettingRefusal(reason: "is not accepted")) },
            render: render)
    }
}

extension Setting where Value == Int {
    /// A whole number in `range`, written with digits only (no sign, no spaces).
    static func integer(
        _ declaration: SettingDeclaration, in range: ClosedRange<Int>, default defaultValue: @escaping @Sendable (SettingDefaults) -> Int
    ) -> Setting {
        Setting(
            declaration: declaration, defaultValue: defaultValue,
            parse: { text in
                guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let value = Int(text),
                    range.contains(value)
                else { return .failure(SettingRefusal(reason: "is not a whole number from \(range.lowerBound) to \(range.upperBound)")) }
                return .success(value)
            },
            render: { "\($0)" })
    }
}

extension Setting where Value == Duration {
    /// A whole number of milliseconds in `range`.
    static func milliseconds(_ declaration: SettingDeclaration, in range: ClosedRange<Int>, default defaultValue: Int) -> Setting {
        let integer = Setting<Int>.integer(declaration, in: range, default: { _ in defaultValue })
        return Setting(
            declaration: declaration, defaultValue: { _ in .milliseconds(defaultValue) },
            parse: { text in integer.parse(text).map { .milliseconds($0) } },
            render: { "\($0.wholeMilliseconds)" })
    }
}

extension Setting where Value == Duration {
    /// A duration written as a whole number with a unit, `ms`, `s`, `m`, `h` or `d` (a bare
    /// number is seconds), within `range`.
    static func duration(_ declaration: SettingDeclaration, in range: ClosedRange<Duration>, default defaultValue: Duration) -> Setting {
        Setting(
            declaration: declaration, defaultValue: { _ in defaultValue },
            parse: { text in
                guard let value = parseDuration(text), range.contains(value) else {
                    return .failure(
                        SettingRefusal(reason: "is not a duration from \(render(range.lowerBound)) to \(render(range.upperBound)) (e.g. 300s, 5m, 24h)"))
                }
                return .success(value)
            },
            render: render)
    }

    private static let units: [(suffix: String, duration: Duration)] = [
        ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600)), ("d", .seconds(86_400)),
    ]

    private static func parseDuration(_ text: String) -> Duration? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 9, let count = Int(digits) else { return nil }
        if unit.isEmpty { return .seconds(count) }
        return units.first { $0.suffix == unit }.map { $0.duration * count }
    }

    /// The largest unit that divides the duration: 300 seconds reads `5m`.
    private static func render(_ duration: Duration) -> String {
        for (suffix, unit) in units.reversed() where duration >= unit && duration.wholeMilliseconds % unit.wholeMilliseconds == 0 {
            return "\(duration.wholeMilliseconds / unit.wholeMilliseconds)\(suffix)"
        }
        return "\(duration.wholeMilliseconds)ms"
    }
}

extension Setting where Value == String {
    /// A path served by the responder: absolute, visible ASCII, no query.
    static func servedPath(_ declaration: SettingDeclaration, default defaultValue: String) -> Setting {
        Setting(
            declaration: declaration, defaultValue: { _ in defaultValue },
            parse: { path in
                path.hasPrefix("/") && path.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) && !path.contains("?")
                    ? .success(path) : .failure(SettingRefusal(reason: "is not accepted"))
            },
            render: { $0 })
    }
}
