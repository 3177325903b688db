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

    /// `FCGI_GET_VALUES` (request id 0) asking `names`, with empty values.
    static func getValues(_ names: [String], padding: UInt8 = 0) -> [UInt8] {
        record(type: 9, id: 0, names.flatMap { pair($0, "") }, padding: padding)
    }

    /// What HAProxy 2.6 sends first on a connection with `option get-values` (mux_fcgi.c,
    /// `fcgi_conn_send_get_values`): two variables, unpadded.
    static let haproxyGetValues = getValues(["FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])

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
        // A begin record of request id 0: libfcgi refuses it too.
        (bytes: Records.begin(id: 0), expected: .malformedBeginRequest),
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
        // Management records inside a request: libfcgi would answer them itself.
        (bytes: Records.begin() + Records.record(type: 9, id: 0, []), expected: .managementRecord),
        (bytes: Records.begin() + Records.params(Records.pair("A", "B")) + Records.getValues(["FCGI_MPXS_CONNS"]), expected: .managementRecord),
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

/// Management records before the request (HAProxy's `option get-values`): answered, consumed,
/// bounded; the request that follows is checked as any other.
@Suite struct FastCGIManagementRecordTests {
    typealias Validator = FastCGIRecordValidator

    /// What the gate makes of `bytes` arriving at once: the answers to the management records
    /// it consumes, how many bytes those were, and the verdict on the rest.
    static func gateReading(_ bytes: [UInt8]) -> (answers: [[UInt8]], consumed: Int, verdict: Validator.Verdict) {
        var validator = Validator()
        var answers: [[UInt8]] = []
        var consumed = 0
        while true {
            let verdict = validator.advance(over: bytes[consumed...])
            guard case .management(let answer, let count) = verdict else { return (answers, consumed, verdict) }
            answers.append(answer)
            consumed += count
        }
    }

    static func result(_ pairs: [(String, String)]) -> [UInt8] {
        let content = pairs.flatMap { Records.pair($0.0, $0.1) }
        let padding = (8 - content.count % 8) % 8
        return [1, 10, 0, 0, 0, UInt8(content.count), UInt8(padding), 0] + content + [UInt8](repeating: 0, count: padding)
    }

    @Test func haproxysGetValuesIsAnsweredAsLibfcgiWouldByteForByte() {
        let content = Array("\u{0D}\u{01}FCGI_MAX_REQS1\u{0F}\u{01}FCGI_MPXS_CONNS0".utf8)
        #expect(content.count == 34)
        let expected: [UInt8] = [1, 10, 0, 0, 0, 34, 6, 0] + content + [0, 0, 0, 0, 0, 0]
        #expect(Records.haproxyGetValues.count == 40)
        #expect(Validator.validate(Records.haproxyGetValues) == .management(answer: expected, byteCount: 40))
    }

    @Test func thenTheRequestIsCheckedAsAnyOtherAndCompleteWhereItEnds() {
        let request = Records.nginxLike()
        let reading = Self.gateReading(Records.haproxyGetValues + request)
        #expect(reading.answers == [Self.result([("FCGI_MAX_REQS", "1"), ("FCGI_MPXS_CONNS", "0")])])
        #expect(reading.consumed == 40)
        #expect(reading.verdict == .complete(byteCount: request.count - 8))
        // A hostile request after a polite question is refused the same.
        let hostile = Records.begin() + Records.header(type: 4, contentLength: 4096) + Records.length(0x7FFF_FFF0, long: true)
        #expect(Self.gateReading(Records.haproxyGetValues + hostile).verdict == .reject(.nameTooLong))
    }

    @Test(arguments: [
        // libfcgi's three, in the order asked; unknown names left out (§4.1).
        (asked: ["FCGI_MPXS_CONNS", "FCGI_MAX_CONNS", "OTHER", "FCGI_MAX_REQS"],
         answered: [("FCGI_MPXS_CONNS", "0"), ("FCGI_MAX_CONNS", "1"), ("FCGI_MAX_REQS", "1")]),
        // Asked twice, answered once (libfcgi's 64-byte buffer would overflow).
        (asked: ["FCGI_MAX_REQS", "FCGI_MAX_REQS", "FCGI_MAX_REQS", "FCGI_MAX_REQS", "FCGI_MAX_REQS"], answered: [("FCGI_MAX_REQS", "1")]),
        // Names are compared exactly, as libfcgi's strcmp does.
        (asked: ["fcgi_mpxs_conns", "FCGI_MPXS_CONNS_", "FCGI_MPXS"], answered: []),
        (asked: [], answered: []),
    ])
    func getValuesAnswersTheVariablesItKnowsOnce(asked: [String], answered: [(String, String)]) {
        let record = Records.getValues(asked)
        #expect(Validator.validate(record) == .management(answer: Self.result(answered), byteCount: record.count))
    }

    @Test func anEmptyQueryGetsAnEmptyResult() {
        #expect(Validator.validate(Records.getValues([])) == .management(answer: [1, 10, 0, 0, 0, 0, 0, 0], byteCount: 8))
    }

    /// Values in the query are ignored (they should be empty), four-byte lengths are followed.
    @Test func valuesAndFourByteLengthsInTheQuery() {
        let name = Array("FCGI_MPXS_CONNS".utf8)
        let content = Records.length(name.count, long: true) + Records.length(3, long: true) + name + Array("yes".utf8)
        let record = Records.record(type: 9, id: 0, content)
        #expect(Validator.validate(record) == .management(answer: Self.result([("FCGI_MPXS_CONNS", "0")]), byteCount: record.count))
    }

    /// The answer comes only once the record is whole, padding included: libfcgi must find the
    /// begin record's header right after what the gate consumed.
    @Test func aPaddedRecordIsAnsweredOnlyWithItsPadding() {
        let record = Records.getValues(["FCGI_MPXS_CONNS"], padding: 7)
        var validator = Validator()
        for end in 0..<record.count {
            #expect(validator.advance(over: record[..<end]) == .needMore, "prefix of \(end) bytes")
        }
        #expect(validator.advance(over: record) == .management(answer: Self.result([("FCGI_MPXS_CONNS", "0")]), byteCount: record.count))
        let request = Records.begin() + Records.endOfParams
        #expect(validator.advance(over: request) == .complete(byteCount: request.count))
    }

    /// Any other management type gets `FCGI_UNKNOWN_TYPE` (§4.2), its content skipped.
    @Test(arguments: [UInt8(2), 4, 5, 10, 11, 12, 255])
    func anotherTypeIsAnsweredUnknownType(type: UInt8) {
        let record = Records.record(type: type, id: 0, [1, 2, 3], padding: 5)
        let answer: [UInt8] = [1, 11, 0, 0, 0, 8, 0, 0, type, 0, 0, 0, 0, 0, 0, 0]
        #expect(Validator.validate(record) == .management(answer: answer, byteCount: 16))
        #expect(Validator.unknownTypeRecord(type: type) == answer)
        let reading = Self.gateReading(record + Records.begin() + Records.endOfParams)
        #expect(reading.answers == [answer] && reading.verdict == .complete(byteCount: 24))
    }

    @Test func eightRecordsAreAnsweredTheNinthRefused() {
        let eight = [[UInt8]](repeating: Records.haproxyGetValues, count: 8).flatMap { $0 }
        let request = Records.begin() + Records.endOfParams
        let reading = Self.gateReading(eight + request)
        #expect(reading.answers.count == 8 && reading.verdict == .complete(byteCount: request.count))
        let nine = Self.gateReading(eight + Records.header(type: 12, id: 0, contentLength: 0) + request)
        #expect(nine.answers.count == 8 && nine.verdict == .reject(.tooManyManagementRecords))
    }

    @Test func contentIsBoundedAt1024Bytes() {
        let name = String(repeating: "N", count: 1024 - 4 - 1)
        let largest = Records.record(type: 9, id: 0, Records.length(name.utf8.count, long: true) + [0] + Array(name.utf8))
        #expect(largest.count == 8 + 1024)
        #expect(Validator.validate(largest) == .management(answer: Self.result([]), byteCount: largest.count))
        // Refused from its header, long before its body.
        #expect(Validator.validate(Records.header(type: 9, id: 0, contentLength: 1025)) == .reject(.malformedManagementRecord))
        #expect(Validator.validate(Records.header(type: 12, id: 0, contentLength: 1025)) == .reject(.malformedManagementRecord))
    }

    @Test(arguments: [
        [UInt8(3)],  // a name length, no value length
        [1, 1, 0x41],  // a pair one byte short
        [0x80, 0, 0],  // a four-byte length cut
        Records.length(0x7FFF_FFF0, long: true) + [1],  // libfcgi would abort on this allocation
        Records.pair("FCGI_MPXS_CONNS", "") + [0],  // a good pair, then half a pair
    ])
    func aGetValuesThatIsNotExactlyPairsIsRefused(content: [UInt8]) {
        #expect(Validator.validate(Records.record(type: 9, id: 0, content)) == .reject(.malformedManagementRecord))
    }

    @Test func aVerdictAfterAnswersStays() {
        var validator = Validator()
        #expect(validator.advance(over: Records.haproxyGetValues).isManagement)
        let refused = Records.begin(role: 2)
        #expect(validator.advance(over: refused) == .reject(.unknownRole(role: 2, requestID: 1)))
        #expect(validator.advance(over: refused + Records.endOfParams) == .reject(.unknownRole(role: 2, requestID: 1)))
    }

    @Test func rejectionNamesAndDescriptions() {
        #expect(Validator.Rejection.tooManyManagementRecords.name == "management_count")
        #expect(Validator.Rejection.malformedManagementRecord.name == "management_malformed")
        #expect(Validator.Rejection.managementRecord.description == "management record inside a request")
    }
}

extension FastCGIRecordValidator.Verdict {
    var isManagement: Bool {
        if case .management = self { return true }
        return false
    }
}
