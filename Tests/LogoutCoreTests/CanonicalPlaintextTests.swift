import Foundation
import Testing

@testable import LogoutCore

/// The fast reading of the origin's exact plaintext shape must decide exactly as `JSONDecoder` does.
@Suite struct CanonicalPlaintextTests {
    /// Plaintexts, one per line; `true` when the fast path should take it.
    static let plaintexts: [(String, Bool)] = [
        (#"{"token":"abc.def-ghi_jkl","issuedAt":1732400000000}"#, true),
        (#"{"token":"a","issuedAt":0}"#, true),
        (#"{"token":"","issuedAt":1}"#, true),  // empty token: both say no session
        (#"{"token":"has space","issuedAt":1}"#, true),  // both refuse the space
        (#"{"token":"caf\#u{e9}","issuedAt":1}"#, true),  // non-ASCII: both refuse
        (#"{"token":"esc\"aped","issuedAt":1}"#, false),
        (#"{"token":"back\\slash","issuedAt":1}"#, false),
        (#"{"token":"\u0041BC","issuedAt":1}"#, false),
        (#"{"token":"abc","issuedAt":01}"#, false),
        (#"{"token":"abc","issuedAt":-1}"#, false),
        (#"{"token":"abc","issuedAt":1.5}"#, false),
        (#"{"token":"abc","issuedAt":}"#, false),
        (#"{"token":"abc","issuedAt":1} "#, false),
        (#"{"token":"abc","issuedAt":1,"x":2}"#, false),
        (#"{"issuedAt":1,"token":"abc"}"#, false),
        (#" {"token":"abc","issuedAt":1}"#, false),
        (#"{"token":"abc"}"#, false),
        (#"{"token":12345,"issuedAt":1}"#, false),
        (#"{"token":"abc","issuedAt":1"#, false),
        (#"{"token":"abc"#, false),
        ("legacy-raw-token", false),
        ("", false),
    ]

    @Test(arguments: plaintexts)
    func fastPathAgreesWithTheDecoder(plaintext: String, fast: Bool) {
        let data = Data(plaintext.utf8)
        let tookFastPath = data.withUnsafeBytes { SealedSession.canonicalToken(in: $0) } != nil
        #expect(tookFastPath == fast)
        #expect(SealedSession.token(fromPlaintext: data) == SealedSession.decodedToken(fromPlaintext: data))
    }

    /// What `JSON.stringify({ token, issuedAt })` writes (node), one token per line.
    static let originPlaintexts: [(String, Int64, String)] = [
        ("abc.def-ghi_jkl", 1_732_400_000_000, #"{"token":"abc.def-ghi_jkl","issuedAt":1732400000000}"#),
        ("a/b", 0, #"{"token":"a/b","issuedAt":0}"#),
        ("q\"b\\s", 1, #"{"token":"q\"b\\s","issuedAt":1}"#),
        ("\u{8}\u{c}\n\r\t\u{1}\u{1f}", 2, #"{"token":"\b\f\n\r\t\u0001\u001f","issuedAt":2}"#),
        ("caf\u{e9}", 3, "{\"token\":\"caf\u{e9}\",\"issuedAt\":3}"),
    ]

    @Test(arguments: originPlaintexts)
    func sealWritesTheOriginsBytes(token: String, issuedAt: Int64, json: String) throws {
        let plaintext = try SealedSession.plaintext(token: token, issuedAtMilliseconds: issuedAt)
        #expect(String(decoding: plaintext, as: UTF8.self) == json)
        // The origin's shape: a header-safe token takes the fast path, and the decoder agrees.
        let fast = plaintext.withUnsafeBytes { SealedSession.canonicalToken(in: $0) } != nil
        #expect(fast == !json.contains("\\"))
        #expect(SealedSession.token(fromPlaintext: plaintext) == SealedSession.decodedToken(fromPlaintext: plaintext))
    }

    @Test func randomTokensAgree() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0...40, using: &generator)
            let token = String((0..<length).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &generator))) })
            let json = String(data: try! JSONEncoder().encode(["token": token]), encoding: .utf8)!
            let plaintext = String(json.dropLast()) + #","issuedAt":\#(Int.random(in: 0...Int(Int32.max), using: &generator))}"#
            let data = Data(plaintext.utf8)
            #expect(SealedSession.token(fromPlaintext: data) == SealedSession.decodedToken(fromPlaintext: data), "\(plaintext)")
        }
    }
}
