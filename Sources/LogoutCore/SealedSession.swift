import Crypto
import ExtrasBase64
import FoundationEssentials

/// The origin's sealed cookie format: base64url(`iv` ‖ `tag` ‖ `ciphertext`).
///
/// `iv` is 16 bytes (not GCM's usual 12), `tag` the 16-byte GCM tag, and the ciphertext AES-256-GCM
/// of the UTF-8 plaintext with no associated data. The plaintext is `{"token":…,"issuedAt":…}`,
/// or, in older cookies, the raw token.
public enum SealedSession {
    static let ivLength = 16
    static let tagLength = 16

    /// Opens cookie values into access tokens with the configured secrets.
    public struct Opener: Sendable {
        /// A decryption context per secret, in the secrets' order, keyed once (issue 20).
        private let keyring: GCMKeyring

        /// - Parameter secrets: tried in order: the current secret first, then the previous one.
        public init(secrets: [SessionSecret]) {
            keyring = GCMKeyring(keys: secrets.map(\.key), nonceLength: ivLength, direction: .decrypt)
        }

        /// The access token in a cookie value, or nil when the value holds no usable session.
        ///
        /// Nil for bad base64url, fewer than 32 decoded bytes, a tag no secret verifies, a JSON
        /// object without a string `token`, or a token that is not header-safe.
        public func token(fromCookieValue value: some Collection<UInt8>) -> AccessToken? {
            try? open(cookieValue: value).get()
        }

        /// The access token in a cookie value, or why there is none: the mismatch detector
        /// counts the reasons (a run of tag mismatches means a wrong `SESSION_SECRET`).
        public func open(cookieValue value: some Collection<UInt8>) -> Result<AccessToken, OpenFailure> {
            guard let sealed = try? Base64.decode(bytes: value, options: [.base64UrlAlphabet, .omitPaddingCharacter]) else {
                return .failure(.notBase64url)
            }
            guard sealed.count >= ivLength + tagLength else { return .failure(.tooShort) }
            guard let plaintext = open(sealed) else { return .failure(.tagMismatch) }
            guard let token = SealedSession.token(fromPlaintext: plaintext) else { return .failure(.badPlaintext) }
            return .success(token)
        }

        /// The plaintext under the first secret whose key verifies the tag, nil when none does.
        private func open(_ sealed: [UInt8]) -> [UInt8]? {
            var plaintext = [UInt8](repeating: 0, count: sealed.count - ivLength - tagLength)
            let opened = sealed.withUnsafeBytes { sealed in
                plaintext.withUnsafeMutableBytes { plaintext in
                    keyring.withContexts { contexts in
                        contexts.contains { context in
                            context.open(
                                nonce: UnsafeRawBufferPointer(rebasing: sealed[..<ivLength]),
                                ciphertext: UnsafeRawBufferPointer(rebasing: sealed[(ivLength + tagLength)...]),
                                tag: UnsafeRawBufferPointer(rebasing: sealed[ivLength..<(ivLength + tagLength)]),
                                authenticating: UnsafeRawBufferPointer(start: nil, count: 0), into: plaintext)
                        }
                    }
                }
            }
            return opened ? plaintext : nil
        }
    }

    /// Why a present cookie value opened no session.
    public enum OpenFailure: String, Error, Sendable, CaseIterable {
        /// Not base64url (or not decodable as such).
        case notBase64url = "not_base64url"
        /// Fewer than 32 decoded bytes: no room for the iv and the tag.
        case tooShort = "too_short"
        /// No configured secret verifies the GCM tag: forged, corrupted, or sealed with another secret.
        case tagMismatch = "tag_mismatch"
        /// The tag verified but the plaintext holds no usable token.
        case badPlaintext = "bad_plaintext"
    }

    /// Reads a token out of a plaintext the way the origin does.
    ///
    /// A JSON object yields its `token` only when that is a string. Anything that is not a JSON
    /// object is a legacy cookie whose whole plaintext is the token.
    static func token(fromPlaintext plaintext: some DataProtocol & ContiguousBytes) -> AccessToken? {
        if let token = plaintext.withUnsafeBytes({ canonicalToken(in: $0) }) {
            return AccessToken(validating: token)
        }
        return decodedToken(fromPlaintext: plaintext)
    }

    /// The general reading, through `JSONDecoder`.
    static func decodedToken(fromPlaintext plaintext: some DataProtocol) -> AccessToken? {
        let firstSignificant = plaintext.first { !jsonWhitespace.contains($0) }
        if firstSignificant == UInt8(ascii: "{"),
            let payload = try? JSONDecoder().decode(Payload.self, from: Data(plaintext))
        {
            return payload.token.flatMap { AccessToken(validating: $0.utf8) }
        }
        return AccessToken(validating: plaintext)
    }

    private static let canonicalPrefix = Array(#"{"token":""#.utf8)
    private static let canonicalMiddle = Array(#"","issuedAt":"#.utf8)

    /// The token bytes when `plaintext` is exactly what the origin's `JSON.stringify` writes,
    /// `{"token":"…","issuedAt":<digits>}` with no escape in the token; nil for anything else,
    /// which then goes through `JSONDecoder`. Saves the decoder's cost (a third of opening a
    /// cookie) on every cookie the origin issues, without deciding anything differently: in this
    /// shape the JSON string's value is its bytes, and the tests compare both readings.
    static func canonicalToken(in plaintext: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let bytes = plaintext
        guard bytes.starts(with: canonicalPrefix) else { return nil }
        let tokenStart = canonicalPrefix.count
        guard let quote = bytes[tokenStart...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        let token = UnsafeRawBufferPointer(rebasing: bytes[tokenStart..<quote])
        // A backslash starts an escape, a byte below 0x20 is invalid JSON: leave both to the decoder.
        for byte in token where byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
        let rest = bytes[quote...]
        guard rest.starts(with: canonicalMiddle), rest.last == UInt8(ascii: "}") else { return nil }
        let digits = rest.dropFirst(canonicalMiddle.count).dropLast()
        guard !digits.isEmpty, digits.first != UInt8(ascii: "0") || digits.count == 1,
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return token
    }

    private static let jsonWhitespace: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]

    /// The JSON plaintext; a `token` of any type but string reads as nil.
    private struct Payload: Decodable {
        let token: String?

        enum CodingKeys: String, CodingKey { case token }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            token = try? container.decode(String.self, forKey: .token)
        }
    }

    /// Seals `plaintext` exactly as the origin's login does, with a fresh random 16-byte iv.
    public static func seal(plaintext: some DataProtocol, with secret: SessionSecret) throws(CrocanteError) -> String {
        var generator = SystemRandomNumberGenerator()
        let iv = (0..<ivLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        do {
            let box = try AES.GCM.seal(plaintext, using: secret.key, nonce: AES.GCM.Nonce(data: iv))
            let sealed = iv + Array(box.tag) + Array(box.ciphertext)
            return Base64.encodeToString(bytes: sealed, options: [.base64UrlAlphabet, .omitPaddingCharacter])
        } catch {
            throw .cannotSeal(reason: "AES-GCM refused the input")
        }
    }

    /// The JSON plaintext the origin's login writes for `token`: the very bytes of
    /// `JSON.stringify({ token, issuedAt })`, `token` first. Written by hand because
    /// `JSONEncoder` orders keys as it likes (here `issuedAt` first) and escapes `/`: cookies
    /// sealed by `crocante-logout seal` (tests, `bench/profile`) then took `JSONDecoder`'s path
    /// where the origin's take the canonical fast path, and were measured as dearer than real ones.
    public static func plaintext(token: String, issuedAtMilliseconds: Int64) throws(CrocanteError) -> Data {
        var bytes = Array(#"{"token":""#.utf8)
        bytes.reserveCapacity(bytes.count + token.utf8.count + 36)
        appendJSONStringContents(token, to: &bytes)
        bytes += #"","issuedAt":"#.utf8
        bytes += String(issuedAtMilliseconds).utf8
        bytes.append(UInt8(ascii: "}"))
        return Data(bytes)
    }

    /// `token`'s characters as ECMAScript's `JSON.stringify` writes them inside quotes: `"` and
    /// `\` escaped, control characters as `\b \f \n \r \t` or `\u00xx`, the rest as UTF-8.
    static func appendJSONStringContents(_ string: String, to bytes: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20: bytes += Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            default: bytes.append(byte)
            }
        }
    }
}
