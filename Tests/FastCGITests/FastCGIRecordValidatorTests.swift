import FastCGI
import Testing

/// Builds FastCGI records the way a web server (or an attacker) writes them.
enum Records {
    static func header(type: UInt8, id: UInt16 = 1, contentLength: Int, padding: UInt8 = 0, version: UInt8 = 1) -> [UInt8] {
        [version, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(contentLength >> 8), UInt8(contentLength & 0xFF), padding, 0]
    }

    static func record(type: UInt8, id: UInt16 = 1, _ content: [UInt8], padding: UInt8 = 0, version: UInt8 = 1) -> [UInt8] {
        header(type: type, id: id, contentLength: content.count, padding: padding, version: version)
            + content + [UInt8](repeating: 0, count: Int(padding))
    }

    static func begin(role: UInt16 = 1, id: UInt16 = 1, flags: UInt8 = 0) -> [UInt8] {
        record(type: 1, id: id, [UInt8(role >> 8), UInt8(role & 0xFF), flags, 0, 0, 0, 0, 0])
    }

    /// A length as FastCGI encodes it: one byte below 128, else four with the high bit set.
    static func length(_ value: Int, long: Bool = false) -> [UInt8] {
        if value < 128 && !long { return [UInt8(value)] }
        return [UInt8((value >> 24) & 0x7F) | 0x80, UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func pair(_ name: String, _ value: String) -> [UInt8] {
        length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
    }

    static func params(_ content: [UInt8], id: UInt16 = 1, padding: UInt8 = 0) -> [UInt8] {
        record(type: 4, id: id, content, padding: padding)
    }

    static let endOfParams = header(type: 4, contentLength: 0)

    /// What nginx sends for a logout: begin, one params record padded to 8 bytes, the empty
    /// params record, an empty stdin.
    static func nginxLike(cookie: String = "crocante_session=abc") -> [UInt8] {
        let content = pair("REQUEST_METHOD", "POST") + pair("DOCUMENT_URI", "/api/auth/logout") + pair("HTTP_COOKIE", cookie)
        let padding = UInt8((8 - content.count % 8) % 8)
        return begin(flags: 1) + params(content, padding: padding) + endOfParams + header(type: 5, contentLength: 0)
    }
}

@Suite struct FastCGIRecordValidatorTests {
    typealias Validator = FastCGIRecordValidator

    @Test func acceptsWhatNginxSendsAndStopsAtTheEmptyParamsRecord() {
        let bytes = Records.nginxLike()
        let completeAt = bytes.count - 8  // the empty stdin header is not looked at
        #expect(Validator.validate(bytes) == .complete(byteCount: completeAt))
        var validator = Validator()
        #expect(validator.advance(over: bytes) == .complete(byteCount: completeAt))
        #expect(validator.pairCount == 3)
    }

    @Test func everyShorterPrefixNeedsMore() {
        let bytes = Records.nginxLike()
        for end in 0..<(bytes.count - 8) {
            #expect(Validator.validate(bytes[..<end]) == .needMore, "prefix of \(end) bytes")
        }
    }

    /// Byte by byte, resuming each time, gives the same verdict as all at once.
    @Test func resumingByteByByteAgreesWithOneGo() {
        let bytes = Records.nginxLike(cookie: String(repeating: "x", count: 300))
        var validator = Validator()
        var verdict = Validator.Verdict.needMore
        for end in 1...bytes.count {
            verdict = validator.advance(over: bytes[..<end])
            if verdict != .needMore { break }
        }
        #expect(verdict == Validator.validate(bytes))
        #expect(validator.pairCount == 3)
    }

    @Test func fourByteLengthsAndPairsAcrossRecordsAreFollowed() {
        let pair = Records.length(4, long: true) + Records.length(200) + Array("NAME".utf8) + [UInt8](repeating: 0x41, count: 200)
        // Split inside the four-byte length, and again inside the value.
        let bytes = Records.begin() + Records.params(Array(pair[..<2])) + Records.params(Array(pair[2..<50]), padding: 6)
            + Records.params(Array(pair[50...])) + Records.endOfParams
        var validator = Validator()
        #expect(validator.advance(over: bytes) == .complete(byteCount: bytes.count))
        #expect(validator.pairCount == 1)
    }

    @Test func anEmptyParamsStreamIsAcceptedAsLibfcgiDoes() {
        #expect(Validator.validate(Records.begin() + Records.endOfParams) == .complete(byteCount: 24))
    }

    /// The records from issue 10, each refused as soon as its length is in, long before its body.
    @Test(arguments: [
        (name: 0x7FFF_FFF0, value: 14, expected: Validator.Rejection.nameTooLong),
        (name: 0x4000_0000, value: 0x3FFF_FFFD, expected: .nameTooLong),
        (name: 4, value: 0x7FFF_FFFF, expected: .valueTooLong),
        (name: 4, value: 0x3FFF_FFFD, expected: .valueTooLong),
        (name: 1025, value: 1, expected: .nameTooLong),
        (name: 1, value: 32 * 1024 + 1, expected: .valueTooLong),
    ])
    func hostileLengthsAreRefusedBeforeTheirBody(name: Int, value: Int, expected: Validator.Rejection) {
        let lengths = Records.length(name, long: true) + Records.length(value, long: true)
        let bytes = Records.begin() + Records.header(type: 4, contentLength: 4096) + lengths
        #expect(Validator.validate(bytes) == .reject(expected))
    }

    @Test func limitsAtTheirEdgeAreAccepted() {
        let name = String(repeating: "N", count: 1024)
        let value = String(repeating: "v", count: 32 * 1024)
        let content = Records.pair(name, value)
        let bytes = Records.begin() + Records.params(content) + Records.endOfParams
        #expect(Validator.validate(bytes) == .complete(byteCount: bytes.count))
    }

    @Test func theParamsTotalIsBounded() {
        let value = String(repeating: "v", count: 30_000)
        let one = Records.params(Records.pair("A", value))
        // Two fit within 64 KiB, the third record's header already goes over.
        let bytes = Records.begin() + one + one + one
        #expect(Validator.validate(bytes) == .reject(.paramsTooLarge))
        #expect(Validator.validate(Records.begin() + one + one) == .needMore)
    }

    @Test func tinyRecordsWithPaddingRunIntoTheFramingLimit() {
        var bytes = Records.begin()
        for _ in 0..<40 { bytes += Records.params([0], padding: 255) }  // an empty name, then lengths…
        #expect(Validator.validate(bytes) == .reject(.tooMuchFraming))
    }

    @Test(arguments: [
        // Not a begin record first.
        (bytes: Records.params(Records.pair("A", "B")), expected: Validator.Rejection.unexpectedRecordType(4)),
        (bytes: Records.header(type: 5, contentLength: 0), expected: .unexpectedRecordType(5)),
        // FCGI_GET_VALUES, a management record (request id 0).
        (bytes: Records.record(type: 9, id: 0, Records.pair("FCGI_MAX_CONNS", "")), expected: .managementRecord),
        (bytes: Records.begin(id: 0), expected: .managementRecord),
        (bytes: Records.begin(role: 2), expected: .unknownRole(role: 2, requestID: 1)),
        (bytes: Records.begin(role: 3, id: 7), expected: .unknownRole(role: 3, requestID: 7)),
        (bytes: Records.begin(role: 0x1234), expected: .unknownRole(role: 0x1234, requestID: 1)),
        (bytes: Records.record(type: 1, [0, 1, 0, 0]), expected: .malformedBeginRequest),
        // A padded begin record: libfcgi would read its padding as the next header (RecordFuzz).
        (bytes: Records.record(type: 1, [0, 1, 0, 0, 0, 0, 0, 0], padding: 1), expected: .malformedBeginRequest),
        (bytes: Records.record(type: 1, [0, 1, 0, 0, 0, 0, 0, 0], version: 2), expected: .unsupportedVersion(2)),
        (bytes: Records.begin() + Records.begin(id: 2), expected: .secondRequest),
        (bytes: Records.begin() + Records.begin(), expected: .secondRequest),
        (bytes: Records.begin() + Records.params(Records.pair("A", "B"), id: 2), expected: .otherRequestID),
        (bytes: Records.begin() + Records.record(type: 9, id: 0, []), expected: .managementRecord),
        (bytes: Records.begin() + Records.header(type: 2, contentLength: 0), expected: .aborted),
        (bytes: Records.begin() + Records.header(type: 5, contentLength: 0), expected: .unexpectedRecordType(5)),
        (bytes: Records.begin() + Records.header(type: 8, contentLength: 0), expected: .unexpectedRecordType(8)),
        (bytes: Records.begin() + Records.header(type: 4, contentLength: 0, version: 0), expected: .unsupportedVersion(0)),
        // The stream ends inside a pair: after a name length, inside a 4-byte length, inside a body.
        (bytes: Records.begin() + Records.params([3]) + Records.endOfParams, expected: .truncatedParams),
        (bytes: Records.begin() + Records.params([0x80, 0]) + Records.endOfParams, expected: .truncatedParams),
        (bytes: Records.begin() + Records.params([1, 1, 0x41]) + Records.endOfParams, expected: .truncatedParams),
    ])
    func refuses(bytes: [UInt8], expected: Validator.Rejection) {
        #expect(Validator.validate(bytes) == .reject(expected))
    }

    @Test func aVerdictOnceReachedStays() {
        var validator = Validator()
        let refused = Records.begin(role: 2)
        #expect(validator.advance(over: refused) == .reject(.unknownRole(role: 2, requestID: 1)))
        #expect(validator.advance(over: refused + Records.endOfParams) == .reject(.unknownRole(role: 2, requestID: 1)))
    }

    @Test func theUnknownRoleAnswerIsAnEndRequestRecord() {
        #expect(Validator.unknownRoleRecord(requestID: 0x0102) == [1, 3, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0])
    }

    @Test func rejectionDescriptionsNameTheRuleOnly() {
        #expect(Validator.Rejection.nameTooLong.description == "param name over the length limit")
        #expect(Validator.Rejection.unknownRole(role: 2, requestID: 1).name == "role")
    }
}
