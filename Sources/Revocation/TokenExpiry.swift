import Foundation
import LogoutCore

/// The `exp` claim of a token that is a JWT (RFC 7519 §4.1.4), read without checking the
/// signature: it only bounds how long a revocation is retried, and a forged `exp` can only make
/// its own token's revocation give up earlier or later.
package enum TokenExpiry {
    private struct Claims: Decodable {
        var exp: Double
    }

    /// Milliseconds since the epoch at which the token expires, or nil when the token is not a
    /// three-part JWS whose payload is a JSON object with a numeric `exp`.
    package static func of(_ token: AccessToken) -> UnixMilliseconds? {
        // Three parts are two dots: counted first, so that an opaque token costs a scan, not
        // the split's array of parts (2.1k instructions a logout, issue 20).
        var dots = 0
        for byte in token.value.utf8 where byte == UInt8(ascii: ".") { dots += 1 }
        guard dots == 2 else { return nil }
        let parts = token.value.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count <= 8192 else { return nil }
        var base64 = String(decoding: parts[1], as: UTF8.self)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let payload = Data(base64Encoded: base64),
            // JSONDecoder refuses a string or a Bool where a number is declared.
            let seconds = (try? JSONDecoder().decode(Claims.self, from: payload))?.exp
        else { return nil }
        guard seconds.isFinite, seconds > 0, seconds < 1e11 else { return nil }
        return UnixMilliseconds(seconds * 1000)
    }
}
