/// Checks the bytes a FastCGI connection opens with, before libfcgi reads any of them.
///
/// libfcgi trusts the peer: a `FCGI_PARAMS` name length of `0x7FFFFFF0` aborts the process on its
/// allocation assertion, `0x40000000` + `0x3FFFFFFD` makes it allocate 2 GiB, other roles are
/// served as responders, and management records are answered into a 64-byte stack buffer. The
/// worker therefore peeks at the connection (`recv(MSG_PEEK)`) and feeds what it has seen to this
/// validator until the params stream is complete; only then does `FCGX_Accept_r` read the same bytes.
///
/// What is accepted is what nginx or HAProxy sends a responder before the params end: up to
/// eight management records (request id 0, at most 1024 content bytes each; HAProxy's `option
/// get-values` sends one), each answered here (``Verdict/management(answer:byteCount:)``) and
/// consumed by the caller so that libfcgi never reads it; then one `FCGI_BEGIN_REQUEST`
/// (version 1, request id ≠ 0, 8-byte body, role `FCGI_RESPONDER`), then `FCGI_PARAMS` records
/// of that request, the last one empty. Every name/value length is checked against ``Limits`` as
/// soon as its bytes are in, so a hostile length is refused after a few bytes, never after its
/// body. Pure: a value, no socket, no clock.
///
/// The validator resumes where it stopped: pass it the whole prefix seen so far each time
/// (what `MSG_PEEK` returns), which must extend the prefix passed before; after a management
/// verdict, the prefix that follows the record it answered.
public struct FastCGIRecordValidator: Sendable {
    /// The bounds a request must stay within.
    public struct Limits: Sendable, Equatable {
        /// Sum of the `FCGI_PARAMS` content bytes (lengths and names and values).
        public var paramsBytes: Int
        /// One parameter name.
        public var nameLength: Int
        /// One parameter value.
        public var valueLength: Int

        public init(paramsBytes: Int, nameLength: Int, valueLength: Int) {
            self.paramsBytes = paramsBytes
            self.nameLength = nameLength
            self.valueLength = valueLength
        }

        /// nginx with its default `large_client_header_buffers 4 8k` passes at most 32 KiB of
        /// header lines (`HTTP_COOKIE` joins several `Cookie` lines into one value) and an 8 KiB
        /// request line, which it repeats in `REQUEST_URI`, `DOCUMENT_URI` and `SCRIPT_NAME`.
        public static let standard = Limits(paramsBytes: 64 * 1024, nameLength: 1024, valueLength: 32 * 1024)

        /// Record headers and padding allowed on top of the params: nginx pads each record to
        /// 8 bytes, so a record costs at most 15 bytes of framing; more is a peer wasting reads.
        var framingBytes: Int { 8 * 1024 }

        /// Management records answered before the begin record: HAProxy sends one; a peer
        /// asking again and again within the deadline is wasting a worker.
        var managementRecords: Int { 8 }

        /// Content of one management record: HAProxy's `FCGI_GET_VALUES` is 34 bytes, and all
        /// three variables with four-byte lengths would be 66.
        var managementContentBytes: Int { 1024 }
    }

    /// What the bytes seen so far amount to.
    public enum Verdict: Sendable, Equatable {
        /// Valid so far; the params stream has not ended yet.
        case needMore
        /// A responder request whose params are complete after `byteCount` bytes (the empty
        /// `FCGI_PARAMS` header included); libfcgi may read the connection now.
        case complete(byteCount: Int)
        /// A whole management record of `byteCount` bytes opens the prefix: consume those bytes
        /// from the connection (libfcgi must never read them), send `answer`, and go on with the
        /// prefix that follows them.
        case management(answer: [UInt8], byteCount: Int)
        /// Close the connection without letting libfcgi read it.
        case reject(Rejection)
    }

    /// Why a connection is refused; the description names the rule, never the bytes.
    public enum Rejection: Sendable, Equatable, CustomStringConvertible {
        case unsupportedVersion(UInt8)
        /// A record other than `FCGI_BEGIN_REQUEST` (or a management record) first, or other
        /// than `FCGI_PARAMS` after it.
        case unexpectedRecordType(UInt8)
        /// A management record (request id 0) after the begin record: libfcgi would answer it
        /// itself while reading the params.
        case managementRecord
        /// A management record over 1024 content bytes, or an `FCGI_GET_VALUES` whose content
        /// is not exactly name-value pairs.
        case malformedManagementRecord
        /// More management records than ``Limits`` allows before the begin record.
        case tooManyManagementRecords
        /// A record for another request id than the begin record's.
        case otherRequestID
        /// An `FCGI_BEGIN_REQUEST` whose content is not 8 bytes, that is padded, or of request id 0.
        case malformedBeginRequest
        /// A role other than `FCGI_RESPONDER`: answer `FCGI_END_REQUEST` with `FCGI_UNKNOWN_ROLE`.
        case unknownRole(role: UInt16, requestID: UInt16)
        /// A second `FCGI_BEGIN_REQUEST` on the connection.
        case secondRequest
        /// `FCGI_ABORT_REQUEST` before the params ended.
        case aborted
        case paramsTooLarge
        case nameTooLong
        case valueTooLong
        /// The params stream ended inside a name/value pair.
        case truncatedParams
        /// More record framing (headers, padding) than any web server sends.
        case tooMuchFraming

        public var description: String {
            switch self {
            case .unsupportedVersion(let version): return "FastCGI version \(version)"
            case .unexpectedRecordType(let type): return "unexpected record type \(type)"
            case .managementRecord: return "management record inside a request"
            case .malformedManagementRecord: return "management record too large or malformed"
            case .tooManyManagementRecords: return "too many management records"
            case .otherRequestID: return "record for another request id"
            case .malformedBeginRequest: return "malformed begin record"
            case .unknownRole(let role, _): return "role \(role) is not RESPONDER"
            case .secondRequest: return "second request on the connection"
            case .aborted: return "request aborted before its params"
            case .paramsTooLarge: return "params over the size limit"
            case .nameTooLong: return "param name over the length limit"
            case .valueTooLong: return "param value over the length limit"
            case .truncatedParams: return "params end inside a name/value pair"
            case .tooMuchFraming: return "too many records or padding bytes"
            }
        }

        /// A short stable name for counters and logs.
        public var name: String {
            switch self {
            case .unsupportedVersion: return "version"
            case .unexpectedRecordType: return "record_type"
            case .managementRecord: return "management_record"
            case .malformedManagementRecord: return "management_malformed"
            case .tooManyManagementRecords: return "management_count"
            case .otherRequestID: return "request_id"
            case .malformedBeginRequest: return "begin_record"
            case .unknownRole: return "role"
            case .secondRequest: return "second_request"
            case .aborted: return "aborted"
            case .paramsTooLarge: return "params_size"
            case .nameTooLong: return "name_length"
            case .valueTooLong: return "value_length"
            case .truncatedParams: return "truncated_params"
            case .tooMuchFraming: return "framing"
            }
        }
    }

    // FastCGI 1.0 constants (the specification, §8).
    static let headerLength = 8
    static let version1: UInt8 = 1
    static let beginRequest: UInt8 = 1
    static let abortRequest: UInt8 = 2
    static let params: UInt8 = 4
    static let responderRole: UInt16 = 1

    private enum RecordState: Sendable {
        /// Expecting the begin record's header (or a management record's), at the prefix's start.
        case awaitingBegin
        /// Inside a management record: waiting for all of its content and padding.
        case management(type: UInt8, content: Int, padding: Int)
        /// Inside the begin record: its 8-byte body, then `padding` bytes.
        case beginBody(padding: Int)
        /// Expecting a params record header.
        case awaitingParams
        /// Inside a params record: `content` bytes of the stream, then `padding`.
        case paramsContent(content: Int, padding: Int)
        case padding(Int)
        case finished(Verdict)
    }

    /// Where the params stream is inside a name/value pair (libfcgi's `ReadParams`).
    private enum PairState: Sendable {
        /// Reading the name length (`bytes` of it seen; the first byte says 1 or 4).
        case nameLength(bytes: UInt32, seen: Int)
        case valueLength(bytes: UInt32, seen: Int)
        /// Skipping the name and value bytes.
        case body(remaining: Int)
    }

    public let limits: Limits
    private var state = RecordState.awaitingBegin
    private var pair = PairState.nameLength(bytes: 0, seen: 0)
    private var offset = 0
    private var requestID: UInt16 = 0
    private var paramsBytes = 0
    private var framingBytes = 0
    private var managementRecords = 0
    /// Complete name/value pairs seen, for the differential fuzz check against libfcgi.
    public private(set) var pairCount = 0

    public init(limits: Limits = .standard) {
        self.limits = limits
    }

    /// The verdict on a whole prefix at once.
    public static func validate(_ bytes: some Collection<UInt8>, limits: Limits = .standard) -> Verdict {
        var validator = FastCGIRecordValidator(limits: limits)
        return validator.advance(over: bytes)
    }

    /// Continues over `prefix`, all the connection's bytes seen so far (a prefix passed before,
    /// possibly extended; after a management verdict, what follows the answered record); returns
    /// the verdict so far. Once complete or rejected, it stays so.
    public mutating func advance(over prefix: some Collection<UInt8>) -> Verdict {
        if case .finished(let verdict) = state { return verdict }
        let verdict = prefix.withContiguousStorageIfAvailable { run(UnsafeRawBufferPointer($0)) }
            ?? Array(prefix).withUnsafeBytes { run($0) }
        switch verdict {
        case .needMore: break
        case .management: offset = 0  // the caller consumes the record: the next prefix starts after it
        case .complete, .reject: state = .finished(verdict)
        }
        return verdict
    }

    private mutating func run(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        while true {
            let available = bytes.count - offset
            switch state {
            case .finished(let verdict):
                return verdict
            case .awaitingBegin, .awaitingParams:
                guard available >= Self.headerLength else { return .needMore }
                let header = Header(bytes, at: offset)
                offset += Self.headerLength
                if let rejection = accept(header) { return .reject(rejection) }
                if case .finished(let verdict) = state { return verdict }
            case .management(let type, let content, let padding):
                // Whole, padding included: libfcgi must find the begin record's header next.
                guard available >= content + padding else { return .needMore }
                let body = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + content)])
                guard let answer = Self.answer(toManagement: type, content: body) else {
                    return .reject(.malformedManagementRecord)
                }
                state = .awaitingBegin
                return .management(answer: answer, byteCount: offset + content + padding)
            case .beginBody(let padding):
                guard available >= 8 else { return .needMore }
                let role = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
                offset += 8
                guard role == Self.responderRole else { return .reject(.unknownRole(role: role, requestID: requestID)) }
                state = padding > 0 ? .padding(padding) : .awaitingParams
            case .padding(let remaining):
                guard available > 0 else { return .needMore }
                let taken = min(available, remaining)
                offset += taken
                state = taken == remaining ? .awaitingParams : .padding(remaining - taken)
            case .paramsContent(let content, let padding):
                guard available > 0 else { return .needMore }
                let taken = min(available, content)
                if let rejection = readPairs(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)])) {
                    return .reject(rejection)
                }
                offset += taken
                if taken < content {
                    state = .paramsContent(content: content - taken, padding: padding)
                } else {
                    state = padding > 0 ? .padding(padding) : .awaitingParams
                }
            }
        }
    }

    /// Checks one record header against the state; nil when it is acceptable.
    private mutating func accept(_ header: Header) -> Rejection? {
        guard header.version == Self.version1 else { return .unsupportedVersion(header.version) }
        framingBytes += Self.headerLength + Int(header.paddingLength)
        guard framingBytes <= limits.framingBytes else { return .tooMuchFraming }
        if case .awaitingBegin = state {
            guard header.type == Self.beginRequest else {
                guard header.requestID == 0 else { return .unexpectedRecordType(header.type) }
                managementRecords += 1
                guard managementRecords <= limits.managementRecords else { return .tooManyManagementRecords }
                guard header.contentLength <= limits.managementContentBytes else { return .malformedManagementRecord }
                state = .management(type: header.type, content: Int(header.contentLength), padding: Int(header.paddingLength))
                return nil
            }
            // libfcgi's ProcessBeginRecord refuses request id 0 too.
            guard header.requestID != 0 else { return .malformedBeginRequest }
            // Unpadded too: libfcgi's SetReaderType drops the begin record's pending padding, so
            // it would read those bytes as the next header, bytes this check took for padding
            // (RecordFuzz found it). nginx never pads the begin record.
            guard header.contentLength == 8, header.paddingLength == 0 else { return .malformedBeginRequest }
            requestID = header.requestID
            state = .beginBody(padding: Int(header.paddingLength))
            return nil
        }
        guard header.requestID != 0 else { return .managementRecord }
        if header.type == Self.beginRequest { return .secondRequest }
        guard header.requestID == requestID else { return .otherRequestID }
        if header.type == Self.abortRequest { return .aborted }
        guard header.type == Self.params else { return .unexpectedRecordType(header.type) }
        if header.contentLength == 0 {
            // libfcgi's ReadParams stops at the end of the stream only between two pairs.
            guard case .nameLength(_, 0) = pair else { return .truncatedParams }
            // libfcgi does not read the final record's padding before it returns the params.
            state = .finished(.complete(byteCount: offset))
            return nil
        }
        paramsBytes += Int(header.contentLength)
        guard paramsBytes <= limits.paramsBytes else { return .paramsTooLarge }
        state = .paramsContent(content: Int(header.contentLength), padding: Int(header.paddingLength))
        return nil
    }

    /// Follows the name/value pairs through `content`, a piece of the params stream, checking
    /// each length as soon as it is complete.
    private mutating func readPairs(_ content: UnsafeRawBufferPointer) -> Rejection? {
        var index = 0
        while index < content.count {
            switch pair {
            case .body(let remaining):
                let taken = min(remaining, content.count - index)
                index += taken
                if taken == remaining {
                    pairCount += 1
                    pair = .nameLength(bytes: 0, seen: 0)
                } else {
                    pair = .body(remaining: remaining - taken)
                }
            case .nameLength(let bytes, let seen), .valueLength(let bytes, let seen):
                let isName = if case .nameLength = pair { true } else { false }
                let byte = content[index]
                index += 1
                let value = bytes << 8 | UInt32(seen == 0 ? byte & 0x7F : byte)
                // One byte below 0x80 is the whole length; a first byte with the high bit set
                // starts a four-byte length (the high bit is not part of it).
                let isLong = seen > 0 || byte & 0x80 != 0
                let length: Int? = !isLong ? Int(value) : seen == 3 ? Int(value) : nil
                guard let length else {
                    pair = isName ? .nameLength(bytes: value, seen: seen + 1) : .valueLength(bytes: value, seen: seen + 1)
                    continue
                }
                if isName {
                    guard length <= limits.nameLength else { return .nameTooLong }
                    pair = .valueLength(bytes: 0, seen: 0)
                    nameLength = length
                } else {
                    guard length <= limits.valueLength else { return .valueTooLong }
                    if nameLength + length == 0 {
                        pairCount += 1
                        pair = .nameLength(bytes: 0, seen: 0)
                    } else {
                        pair = .body(remaining: nameLength + length)
                    }
                }
            }
        }
        return nil
    }

    private var nameLength = 0

    /// One 8-byte record header.
    private struct Header {
        let version: UInt8
        let type: UInt8
        let requestID: UInt16
        let contentLength: UInt16
        let paddingLength: UInt8

        init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
            version = bytes[offset]
            type = bytes[offset + 1]
            requestID = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
            contentLength = UInt16(bytes[offset + 4]) << 8 | UInt16(bytes[offset + 5])
            paddingLength = bytes[offset + 6]
        }
    }
}

extension FastCGIRecordValidator {
    /// The `FCGI_END_REQUEST` record with `FCGI_UNKNOWN_ROLE` (protocol status 3) for `requestID`:
    /// what the specification says a application answers a role it does not play.
    public static func unknownRoleRecord(requestID: UInt16) -> [UInt8] {
        let endRequest: UInt8 = 3
        let unknownRole: UInt8 = 3
        return [version1, endRequest, UInt8(requestID >> 8), UInt8(requestID & 0xFF), 0, 8, 0, 0,
                0, 0, 0, 0, unknownRole, 0, 0, 0]
    }
}
