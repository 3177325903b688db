/// The answers to management records (request id 0) that open a connection (FastCGI 1.0, §4):
/// `FCGI_GET_VALUES` gets `FCGI_GET_VALUES_RESULT`, any other type `FCGI_UNKNOWN_TYPE`. HAProxy
/// (`option get-values`) asks before its first request and waits for the answer.
///
/// The values are libfcgi's own (`ProcessManagementRecord` in fcgiapp.c): one request at a time on
/// a connection, none multiplexed. Unlike libfcgi, a variable asked twice is answered once (libfcgi
/// writes each answer into a 64-byte stack buffer, which the fourth one overflows), and an unknown
/// type's content is skipped (libfcgi reads it as the next request's bytes and drops the connection).
extension FastCGIRecordValidator {
    static let getValues: UInt8 = 9
    static let getValuesResult: UInt8 = 10
    static let unknownType: UInt8 = 11

    /// The variables of §4.1 and what libfcgi answers for each. `FCGI_MAX_CONNS` is libfcgi's "1"
    /// too, though the workers serve several connections at once: no front end we know asks it
    /// (HAProxy says it cannot use it), and a lower value only makes a client more careful.
    static let variables: [(name: [UInt8], value: UInt8)] = [
        (Array("FCGI_MAX_CONNS".utf8), UInt8(ascii: "1")),
        (Array("FCGI_MAX_REQS".utf8), UInt8(ascii: "1")),
        (Array("FCGI_MPXS_CONNS".utf8), UInt8(ascii: "0")),
    ]

    /// The answer to a management record of `type` whose content is `content`; nil when an
    /// `FCGI_GET_VALUES` record's content is not exactly a sequence of name-value pairs.
    static func answer(toManagement type: UInt8, content: UnsafeRawBufferPointer) -> [UInt8]? {
        guard type == getValues else { return unknownTypeRecord(type: type) }
        guard let names = pairNames(in: content) else { return nil }
        return getValuesResultRecord(asked: names.map { Array(content[$0]) })
    }

    /// `FCGI_GET_VALUES_RESULT` for the variables `names` asks, in the order first asked, each once;
    /// unknown names are left out (§4.1). Values are one byte, the record padded to 8 as libfcgi does.
    public static func getValuesResultRecord(asked names: [[UInt8]]) -> [UInt8] {
        var content: [UInt8] = []
        var answered: [[UInt8]] = []
        for name in names where !answered.contains(name) {
            guard let variable = variables.first(where: { $0.name == name }) else { continue }
            answered.append(name)
            content += [UInt8(name.count), 1] + name + [variable.value]
        }
        let padding = (8 - content.count % 8) % 8
        return [version1, getValuesResult, 0, 0, 0, UInt8(content.count), UInt8(padding), 0]
            + content + [UInt8](repeating: 0, count: padding)
    }

    /// `FCGI_UNKNOWN_TYPE` for a management record of `type` (§4.2).
    public static func unknownTypeRecord(type: UInt8) -> [UInt8] {
        [version1, unknownType, 0, 0, 0, 8, 0, 0, type, 0, 0, 0, 0, 0, 0, 0]
    }

    /// The ranges of the names of the name-value pairs that fill `content` exactly (one- or
    /// four-byte lengths, §3.4); nil when a length or a pair runs past the end.
    static func pairNames(in content: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var index = 0
        func length() -> Int? {
            guard index < content.count else { return nil }
            guard content[index] & 0x80 != 0 else {
                index += 1
                return Int(content[index - 1])
            }
            guard content.count - index >= 4 else { return nil }
            let value = (0..<4).reduce(0) { $0 << 8 | Int(content[index + $1]) } & 0x7FFF_FFFF
            index += 4
            return value
        }
        var names: [Range<Int>] = []
        while index < content.count {
            guard let nameLength = length(), let valueLength = length(),
                nameLength <= content.count - index, valueLength <= content.count - index - nameLength
            else { return nil }
            names.append(index..<(index + nameLength))
            index += nameLength + valueLength
        }
        return names
    }
}
