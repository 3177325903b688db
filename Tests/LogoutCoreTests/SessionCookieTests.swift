import LogoutCore
import Testing

// The Cookie header is `cookie-pair *( ";" SP cookie-pair )` (RFC 6265 §4.2.1), but servers must
// read what user agents actually send (§5.4): pairs split at `;`, white space around them tolerated,
// names compared byte for byte. Like the origin BFF, the first `crocante_session` pair wins.
@Suite struct SessionCookieTests {
    /// One `Cookie` header per line, and the value expected for `crocante_session` (nil: none).
    static let headers: [(String, String?)] = [
        // plain, and among others
        ("crocante_session=abc", "abc"),
        ("a=1; crocante_session=abc", "abc"),
        ("crocante_session=abc; a=1", "abc"),
        ("a=1; crocante_session=abc; b=2", "abc"),
        ("a=1;crocante_session=abc", "abc"),
        ("a=1; b=2", nil),
        // white space: spaces and tabs, leading and trailing, around pairs, names and values
        ("   crocante_session=abc", "abc"),
        ("crocante_session=abc   ", "abc"),
        ("\tcrocante_session=abc\t", "abc"),
        ("a=1;\t crocante_session=abc \t; b=2", "abc"),
        ("a=1; crocante_session =abc", "abc"),
        ("a=1; crocante_session= abc", "abc"),
        ("crocante_session=a b", "a b"),
        // empty pairs
        ("a=1;; crocante_session=abc", "abc"),
        (";;crocante_session=abc;;", "abc"),
        ("; ; crocante_session=abc", "abc"),
        (";", nil),
        (";;", nil),
        (" ; ", nil),
        // a pair without `=` is skipped
        ("crocante_session; crocante_session=x", "x"),
        ("crocante_session", nil),
        ("a; b; crocante_session", nil),
        // empty value: the first occurrence wins even when it is empty
        ("crocante_session=", ""),
        ("crocante_session=; crocante_session=x", ""),
        ("crocante_session=   ; crocante_session=x", ""),
        // duplicates: the first wins
        ("crocante_session=first; crocante_session=second", "first"),
        ("a=1; crocante_session=first; b=2; crocante_session=second", "first"),
        // double quotes (RFC 6265 §4.1.1 `DQUOTE *cookie-octet DQUOTE`) are unwrapped
        ("crocante_session=\"abc\"", "abc"),
        ("a=1; crocante_session=\"abc\"; b=2", "abc"),
        ("crocante_session=\"\"", ""),
        ("crocante_session= \"abc\" ", "abc"),
        // a lone quote is not unwrapped
        ("crocante_session=\"", "\""),
        ("crocante_session=\"abc", "\"abc"),
        ("crocante_session=abc\"", "abc\""),
        // the name is case-sensitive
        ("Crocante_Session=x", nil),
        ("CROCANTE_SESSION=x", nil),
        ("Crocante_Session=x; crocante_session=y", "y"),
        // the name must match whole, not as a prefix or suffix of another
        ("xcrocante_session=1", nil),
        ("crocante_session2=1", nil),
        ("_crocante_session=1", nil),
        ("crocante_sessio=1", nil),
        ("xcrocante_session=1; crocante_session2=2; crocante_session=real", "real"),
        ("a=crocante_session=x", nil),
        ("a=x crocante_session=y", nil),
        // `=` inside the value is kept
        ("crocante_session=a=b==", "a=b=="),
        ("crocante_session==", "="),
        // empty header
        ("", nil),
    ]

    @Test(arguments: headers)
    func findsTheSessionValue(header: String, expected: String?) {
        let value = SessionCookie.value(in: Array(header.utf8))
        #expect(value.map { Array($0) } == expected.map { Array($0.utf8) })
    }

    /// Bytes that are not UTF-8 elsewhere in the header neither hide the cookie nor break parsing.
    static let byteHeaders: [([UInt8], [UInt8]?)] = [
        ([0xFF, 0xFE] + Array("; crocante_session=abc".utf8), Array("abc".utf8)),
        (Array("a=".utf8) + [0xC3, 0x28] + Array("; crocante_session=abc; b=".utf8) + [0x80], Array("abc".utf8)),
        (Array("crocante_session=abc; x=".utf8) + [0xFF], Array("abc".utf8)),
        ([0xFF] + Array("crocante_session=abc".utf8), nil),
        (Array("crocante_session=".utf8) + [0xFF, 0x41], [0xFF, 0x41]),
        ([0xFF], nil),
        ([0xC0, 0x80, 0x3B, 0xED, 0xA0, 0x80], nil),
    ]

    @Test(arguments: byteHeaders)
    func toleratesBytesThatAreNotUTF8(header: [UInt8], expected: [UInt8]?) {
        #expect(SessionCookie.value(in: header).map { Array($0) } == expected)
    }

    @Test func readsASliceThatDoesNotStartAtZero() {
        let header = Array("a=1; crocante_session=abc; b=2".utf8)
        #expect(SessionCookie.value(in: header[5...]).map { Array($0) } == Array("abc".utf8))
        #expect(SessionCookie.value(in: header[6...]) == nil)  // starts at "rocante_session=abc"
        #expect(SessionCookie.value(in: header[5..<24]).map { Array($0) } == Array("ab".utf8))
    }

    @Test func readsAnyCollectionOfBytes() {
        let header = "a=1; crocante_session=abc"
        #expect(SessionCookie.value(in: header.utf8).map { Array($0) } == Array("abc".utf8))
        #expect(SessionCookie.value(in: Array(header.utf8).reversed()) == nil)
    }

    @Test func nameIsTheOriginsCookieName() {
        #expect(SessionCookie.name == "crocante_session")
    }
}
