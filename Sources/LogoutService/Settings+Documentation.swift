/// The settings table rendered for people: `--help`, the README's configuration table and
/// `deploy/env.example`. Tests fail when the committed files differ from these renderings.
extension Settings {
    /// The README's configuration table (Markdown), one row per setting.
    public static var markdownTable: String {
        var lines = ["| Variable | Flag | Accepted | Default | Meaning |", "|---|---|---|---|---|"]
        for setting in all {
            var names = "`\(setting.name)`"
            if setting.acceptsNextPublicSpelling { names += " (or `NEXT_PUBLIC_\(setting.name)`)" }
            if let credential = setting.credential { names += ", `\(setting.name)_FILE`, credential `\(credential)`" }
            let flag = setting.flag.map { "`--\($0)`" } ?? "—"
            lines.append("| \(names) | \(flag) | \(setting.accepted) | \(setting.defaultText) | \(setting.help) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `deploy/env.example`: every setting, required ones with an example value, the others
    /// commented with their default; secrets only as a pointer to their credential.
    public static var environmentExample: String {
        var text = """
            # /etc/crocante-logout/env: settings for crocante-logout.service (systemd EnvironmentFile).
            # Generated from the settings table: `crocante-logout settings --env-example` prints this file.
            # The names are the login service's, so its .env values can be copied as they are.

            """
        for setting in all {
            text += "\n# \(plain(setting.help))\n# Accepted: \(plain(setting.accepted)). Default: \(plain(setting.defaultText)).\n"
            if setting.acceptsNextPublicSpelling { text += "# Also read as NEXT_PUBLIC_\(setting.name).\n" }
            if let credential = setting.credential {
                text += "# Secret: never set here. The unit loads the systemd credential \"\(credential)\";\n"
                text += "# outside systemd set \(setting.name) or \(setting.name)_FILE=/path/to/file.\n"
                text += "#\(setting.name)_FILE=\n"
            } else if let example = setting.example {
                text += "\(setting.name)=\(example)\n"
            } else {
                // A default written as a literal (`10000`) is shown as the value; a computed one is not.
                let isLiteral = setting.defaultText.hasPrefix("`") && setting.defaultText.hasSuffix("`")
                    && setting.defaultText.filter { $0 == "`" }.count == 2
                let literal = isLiteral ? plain(setting.defaultText) : ""
                text += "#\(setting.name)=\(literal)\n"
            }
        }
        return text
    }

    /// The flags, for `--help`: one paragraph each (argument-parser rewraps lines), with the
    /// variable it overrides, the accepted values and the default.
    public static var flagHelp: String {
        all.compactMap { setting in
            setting.flag.map { flag in
                "--\(flag) <value>: \(plain(setting.help)) Variable \(setting.name); \(plain(setting.accepted)); default \(plain(setting.defaultText))."
            }
        }.joined(separator: "\n\n")
    }

    /// Markdown code spans as plain text.
    private static func plain(_ text: String) -> String {
        text.replacing("`", with: "")
    }
}
