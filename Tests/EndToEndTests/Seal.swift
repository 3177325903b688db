import Foundation
import LogoutCore

/// Session cookies for the tests; every one, and every token and plaintext in it, is recorded
/// in the ``SecretLedger``.
enum Seal {
    /// A secret neither the responder's current nor its previous one.
    static let foreignSecret = "e2e-foreign-secret-0123456789abcdefgh"

    /// Cookies sealed by Node (scripts/origin-seal.js) exactly as the origin's login seals them, one per plaintext.
    static func origin(_ plaintexts: [String], secret: String = Harness.secret) throws -> [String] {
        SecretLedger.record(plaintexts)
        SecretLedger.record(secret)
        let input = try JSONSerialization.data(withJSONObject: plaintexts)
        let result = try Harness.run(
            "/usr/bin/env", ["node", Harness.packageRoot.appendingPathComponent("scripts/origin-seal.js").path],
            environment: ["SESSION_SECRET": secret, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
            stdin: input)
        let cookies = result.stdout.split(separator: "\n").map(String.init)
        guard result.status == 0, cookies.count == plaintexts.count else { throw HarnessError("origin-seal.js failed: \(result.stderr)") }
        SecretLedger.record(cookies)
        return cookies
    }

    /// The origin's JSON plaintext `{"token":…,"issuedAt":…}`.
    static func originJSON(token: String) -> String {
        let escaped = String(data: try! JSONSerialization.data(withJSONObject: [token], options: [.withoutEscapingSlashes]), encoding: .utf8)!
        return "{\"token\":\(escaped.dropFirst().dropLast()),\"issuedAt\":\(Int(Date().timeIntervalSince1970 * 1000))}"
    }

    /// Origin cookies with the JSON plaintext for each token.
    static func sessions(_ tokens: [String], secret: String = Harness.secret) throws -> [String] {
        SecretLedger.record(tokens)
        return try origin(tokens.map(originJSON(token:)), secret: secret)
    }

    static func session(_ token: String, secret: String = Harness.secret) throws -> String {
        try sessions([token], secret: secret)[0]
    }

    /// Any plaintext bytes (also invalid UTF-8, which Node's string API cannot seal), sealed by
    /// the responder's own `SealedSession.seal` in the origin's format.
    static func bytes(_ plaintext: [UInt8], secret: String = Harness.secret) throws -> String {
        if let text = String(validating: plaintext, as: UTF8.self) { SecretLedger.record(text) }
        let cookie = try SealedSession.seal(plaintext: plaintext, with: SessionSecret(secret, setting: "test"))
        SecretLedger.record(cookie)
        return cookie
    }

    /// Unique tokens for one test, header-safe and never hex-only.
    static func tokens(_ count: Int, _ label: String) -> [String] {
        let run = UUID().uuidString.prefix(8)
        return (0..<count).map { "tok-\(label)-\(run)-\($0)" }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: String) -> [UInt8] {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Array(Data(base64Encoded: standard) ?? Data())
    }

    /// `cookie` with one bit of the decoded byte at `offset` flipped (0: iv, 16: tag, 32: ciphertext).
    static func tampered(_ cookie: String, at offset: Int) -> String {
        var bytes = unbase64url(cookie)
        bytes[offset] ^= 0x01
        let value = base64url(bytes)
        SecretLedger.record(value)
        return value
    }

    static func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }
}
