import LogoutCore

/// Reads one setting at a time from the environment, naming the variable in every error, and
/// remembers how each value is shown by `check-config`.
struct SettingReader {
    let environment: [String: String]
    let defaults: SettingDefaults
    let readFile: (String) -> String?
    /// `NAME=value` lines in the order read, secrets redacted.
    private(set) var shown: [String] = []
    /// Values accepted but suspicious, for a warning at start-up (never the value).
    private(set) var warnings: [String] = []

    init(environment: [String: String], defaults: SettingDefaults, readFile: @escaping (String) -> String?) {
        self.environment = environment
        self.defaults = defaults
        self.readFile = readFile
    }

    /// The setting's value, its default when absent, or an error naming it.
    mutating func value<Value>(_ setting: Setting<Value>) throws(CrocanteError) -> Value {
        let name = setting.declaration.name
        let value: Value
        if let text = text(setting.declaration) {
            switch setting.parse(text) {
            case .success(let parsed): value = parsed
            case .failure(let refusal):
                // A refused URL may hold user:password@: never echo it.
                throw .invalidSetting(name, reason: "\(Self.quoted(Configuration.redactingCredentials(text))) \(refusal.reason)")
            }
        } else if let defaultValue = setting.defaultValue(defaults) {
            value = defaultValue
        } else {
            throw .missingSetting(name)
        }
        shown.append("\(name)=\(setting.render(value))")
        return value
    }

    /// A secret from its variable, else from the file `<name>_FILE` names, else from its systemd
    /// credential (`$CREDENTIALS_DIRECTORY/<credential>`); nil when none is set.
    mutating func secret(_ declaration: SettingDeclaration) throws(CrocanteError) -> SessionSecret? {
        let found = try secretText(declaration)
        shown.append("\(declaration.name)=\(found == nil ? "(unset)" : "(set, redacted)")")
        if let found, let first = found.value.unicodeScalars.first, let last = found.value.unicodeScalars.last,
            first.properties.isWhitespace || last.properties.isWhitespace
        {
            // Kept as given (the login service may really use it), but a pasted space or a CR is
            // the usual reason no cookie opens.
            warnings.append("\(found.source) starts or ends with white space; if no session opens, that is likely why")
        }
        return try found.map { found throws(CrocanteError) in try SessionSecret(found.value, setting: found.source) }
    }

    /// A secret kept as text (a PEM key), read as ``secret(_:)`` reads one; `origin` says where
    /// it came from (the variable, the file's path, or the credential), for messages.
    mutating func secretText(named declaration: SettingDeclaration) throws(CrocanteError) -> (value: String, setting: String, origin: String)? {
        let found = try secretText(declaration)
        let origin: String? = found.map { found in
            found.source.hasSuffix("_FILE") ? Self.quoted(environment[found.source] ?? "") : found.source
        }
        shown.append("\(declaration.name)=\(origin.map { "(set from \($0), redacted)" } ?? "(unset)")")
        return found.map { ($0.value, $0.source, origin ?? $0.source) }
    }

    private func secretText(_ declaration: SettingDeclaration) throws(CrocanteError) -> (value: String, source: String)? {
        let name = declaration.name
        if let value = text(declaration) { return (value, name) }
        if let path = nonEmpty(name + "_FILE") {
            guard let text = readFile(path) else { throw .invalidSetting(name + "_FILE", reason: "cannot read \(Self.quoted(path))") }
            return (Self.withoutFinalNewline(text), name + "_FILE")
        }
        if let credential = declaration.credential, let directory = nonEmpty("CREDENTIALS_DIRECTORY"),
            let text = readFile(directory + "/" + credential)
        {
            return (Self.withoutFinalNewline(text), "credential \(credential)")
        }
        return nil
    }

    /// Whether the setting was given (rather than defaulted).
    func isGiven(_ declaration: SettingDeclaration) -> Bool {
        text(declaration) != nil
    }

    /// The text under the setting's name, else under its `NEXT_PUBLIC_` spelling where it has
    /// one; empty counts as unset.
    private func text(_ declaration: SettingDeclaration) -> String? {
        if let value = nonEmpty(declaration.name) { return value }
        return declaration.acceptsNextPublicSpelling ? nonEmpty("NEXT_PUBLIC_" + declaration.name) : nil
    }

    private func nonEmpty(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// Editors and `echo` end files with a newline that is not part of the secret.
    private static func withoutFinalNewline(_ text: String) -> String {
        // "\r\n" is one Character in Swift: compare bytes, or a CRLF file keeps its CR.
        var bytes = Substring(text).utf8[...]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Settings shown here are not secret, but a pasted value can be long or hold control bytes.
    static func quoted(_ text: String) -> String {
        let printable = text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" }
        return "\"" + String(printable.prefix(80)) + "\""
    }
}
