import Foundation
import LogoutCore
import Testing

@testable import LogoutService

/// The settings are declared once (``Settings/all``); the docs that list them are renderings of
/// that table and must not drift from it.
@Suite struct SettingsTableTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func readmeConfigurationTableIsTheRenderedTable() throws {
        let readme = try String(contentsOf: Self.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = "<!-- settings table: crocante-logout settings --markdown -->\n"
        let end = "<!-- end of settings table -->"
        let start = try #require(readme.range(of: begin), "README.md has no settings table marker")
        let stop = try #require(readme.range(of: end, range: start.upperBound..<readme.endIndex))
        #expect(String(readme[start.upperBound..<stop.lowerBound]) == Settings.markdownTable)
    }

    @Test func envExampleIsTheRenderedTable() throws {
        let example = try String(contentsOf: Self.packageRoot.appendingPathComponent("deploy/env.example"), encoding: .utf8)
        #expect(example == Settings.environmentExample)
    }

    @Test func namesAndFlagsAreUnique() {
        let names = Settings.all.map(\.name)
        let flags = Settings.all.compactMap(\.flag)
        #expect(Set(names).count == names.count)
        #expect(Set(flags).count == flags.count)
    }

    /// A command line is visible to every user of the host; Next.js ships NEXT_PUBLIC_ values to browsers.
    @Test func secretsHaveNoFlagAndNoPublicSpelling() {
        for setting in Settings.all where setting.isSecret {
            #expect(setting.flag == nil, "\(setting.name)")
            #expect(!setting.acceptsNextPublicSpelling, "\(setting.name)")
        }
    }

    /// Every setting in the table is read by `Configuration` (it shows up in the summary), and
    /// nothing is read that the table does not declare.
    @Test func everyDeclaredSettingIsRead() throws {
        let configuration = try Configuration(
            environment: [
                "SESSION_SECRET": "settings-table-secret-0123456789-abcdef", "API_GATEWAY": "http://127.0.0.1:9",
                "EP_AUTH_LOGOUT": "auth/logout",
            ],
            processorCount: 2)
        let shown = configuration.summary.split(separator: "\n").compactMap { $0.split(separator: "=").first.map(String.init) }
        #expect(shown.dropLast() == Settings.all.map(\.name)[...])
        #expect(shown.last == "backend URL")
    }
}
