// Fuzzing "Cookie header bytes -> session opening -> response" (LogoutEndpoint.decide).
//
// Built with `-D FUZZING` (see scripts/fuzz) this file exports libFuzzer's
// `LLVMFuzzerTestOneInput` and has no main: libFuzzer's own main drives it. Built normally it is
// a replay tool, `CookieFuzz DIR...`, that runs every file of the given corpus directories
// through the same function, so the ordinary `swift build` links and checks it.
//
// Every input is used twice:
//  1. as a raw `Cookie` header;
//  2. as a session plaintext, sealed with the fuzz secret under a fixed iv and put in a
//     `crocante_session` cookie, so the fuzzer reaches the JSON and legacy-token reading that a
//     GCM tag otherwise keeps out of reach of mutation.
// A broken invariant is a `preconditionFailure`, which libFuzzer reports as a crash.

import Crypto
import ExtrasBase64
import FoundationEssentials
import LogoutCore

import FuzzSupport

#if !FUZZING
import Foundation
#endif

enum CookieFuzz {
    /// Fixed test secrets; never used anywhere but here and in the seed corpus.
    static let secret = "cookie-fuzz-secret-0123456789abcdef"
    static let previousSecret = "cookie-fuzz-previous-0123456789abcd"

    static let endpoint = LogoutEndpoint(
        opener: SealedSession.Opener(secrets: [
            try! SessionSecret(secret, setting: "fuzz"), try! SessionSecret(previousSecret, setting: "fuzz"),
        ]),
        secureCookie: true)
    static let key = SymmetricKey(data: SHA256.hash(data: Array(secret.utf8)))
    static let iv = [UInt8](repeating: 0x5A, count: 16)
    static let loggedOut = LogoutResponse.loggedOut(secure: true)

    /// One fuzz input; whether it opened a session as a Cookie header.
    @discardableResult
    static func run(_ input: [UInt8]) -> Bool {
        let token = checkHeader(input)
        checkPlaintext(input)
        return token != nil
    }

    /// The input as a whole `Cookie` header.
    @discardableResult
    static func checkHeader(_ header: [UInt8]) -> AccessToken? {
        let decision = endpoint.decide(method: "POST", cookieHeader: header)
        // Whatever the cookie: 200 with the cleared cookie.
        guard decision.response == loggedOut else { preconditionFailure("POST did not get the logged-out answer") }
        for token in decision.tokensToRevoke { checkToken(token) }
        // Every session cookie is tried (issue 10), but boundedly, each distinct token once.
        guard decision.tokensToRevoke.count <= SessionCookie.valueLimit,
            Set(decision.tokensToRevoke).count == decision.tokensToRevoke.count,
            decision.tokensToRevoke.count + decision.failures.count <= SessionCookie.valueLimit
        else { preconditionFailure("more sessions than the bound, or one twice") }
        // Pure: the same header gets the same decision.
        guard endpoint.decide(method: "POST", cookieHeader: header) == decision else {
            preconditionFailure("decide is not deterministic")
        }
        // Another method never revokes and never clears (paths are the router's, tested in LogoutServiceTests).
        let other = endpoint.decide(method: "GET", cookieHeader: header)
        guard other.response == .methodNotAllowed, other.tokenToRevoke == nil else { preconditionFailure("GET revoked or cleared") }
        // An unrelated cookie before, or another crocante_session after, changes nothing
        // (pairs split at ';', sessions revoked in header order: the first token stays first).
        let prefixed = endpoint.decide(method: "POST", cookieHeader: Array("other=1; ".utf8) + header)
        guard prefixed.tokenToRevoke == decision.tokenToRevoke else { preconditionFailure("a cookie before changed the token") }
        let suffixed = endpoint.decide(
            method: "POST", cookieHeader: header + Array("; crocante_session=bm90LWEtc2Vzc2lvbg".utf8))
        guard suffixed.tokenToRevoke == decision.tokenToRevoke else { preconditionFailure("a later session cookie won") }
        return decision.tokenToRevoke
    }

    /// The input as the plaintext of a session sealed with the fuzz secret.
    static func checkPlaintext(_ plaintext: [UInt8]) {
        guard let box = try? AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: iv)) else {
            preconditionFailure("sealing failed")
        }
        let value = Base64.encodeToString(
            bytes: iv + Array(box.tag) + Array(box.ciphertext), options: [.base64UrlAlphabet, .omitPaddingCharacter])
        let token = checkHeader(Array("a=b; crocante_session=\(value); c=d".utf8))
        // Quoted, the same cookie opens the same way.
        guard checkHeader(Array("crocante_session=\"\(value)\"".utf8)) == token else { preconditionFailure("quoting changed the token") }
        // The documented reading, done here the slow, general way (any fast path inside must agree):
        // a JSON object yields its `token` when that is a string, anything else is a legacy
        // cookie whose whole plaintext is the token; either only when header-safe.
        let expected = referenceToken(plaintext)
        guard token?.value == expected else {
            preconditionFailure(
                "the token differs from the general reading of the plaintext: \(token?.value.debugDescription ?? "nil") instead of \(expected?.debugDescription ?? "nil")")
        }
    }

    private struct Payload: Decodable {
        let token: String?
        enum CodingKeys: String, CodingKey { case token }
        init(from decoder: any Decoder) throws {
            // JSONDecoder parses lazily: a malformed object surfaces here, and must stay an error.
            let container = try decoder.container(keyedBy: CodingKeys.self)
            token = try? container.decode(String.self, forKey: .token)
        }
    }

    static func referenceToken(_ plaintext: [UInt8]) -> String? {
        func headerSafe(_ bytes: some Collection<UInt8>) -> String? {
            !bytes.isEmpty && bytes.allSatisfy({ (0x21...0x7E).contains($0) }) ? String(decoding: bytes, as: UTF8.self) : nil
        }
        let firstSignificant = plaintext.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if firstSignificant == UInt8(ascii: "{"), let payload = try? JSONDecoder().decode(Payload.self, from: Data(plaintext)) {
            return payload.token.flatMap { headerSafe(Array($0.utf8)) }
        }
        return headerSafe(plaintext)
    }

    static func checkToken(_ token: AccessToken) {
        let bytes = Array(token.value.utf8)
        guard !bytes.isEmpty, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            preconditionFailure("a token that is not header-safe")
        }
        let fingerprint = token.fingerprint
        guard fingerprint.utf8.count == 16, fingerprint.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            token.description == "AccessToken(\(fingerprint))"
        else { preconditionFailure("a token's description is not its fingerprint") }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func cookieFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    CookieFuzz.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// The `main` SwiftPM links this executable with (see `runLibFuzzer`).
@_cdecl("CookieFuzz_main")
public func cookieFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc: argc, argv: argv, testOneInput: cookieFuzzTestOneInput)
}
#else
/// Replays corpus directories (or single files) through the fuzz function.
@main
struct CookieFuzzReplay {
    static func main() {
        let (inputs, counted) = CorpusReplay.run(tool: "CookieFuzz", paths: Array(CommandLine.arguments.dropFirst())) { CookieFuzz.run($0) }
        print("CookieFuzz: replayed \(inputs) inputs (\(counted) opened a session), no invariant broken")
    }
}
#endif
