import LogoutCore

/// The on-disk format of a spool segment, as plain values and functions (no I/O).
///
/// A segment is a file header followed by frames:
///
///     header: "CRSP" (4 bytes) | version u8 = 1 | 3 zero bytes            (8 bytes)
///     frame:  length u32 LE | kind u8 | body (length bytes) | crc32c u32 LE (of kind and body)
///
/// Kind 1, a token record: body = sequence u64 LE | nonce (12) | AES-GCM ciphertext | tag (16),
/// the plaintext being `loggedOutAt` i64 LE followed by the token's bytes, and the sequence number
/// bound in as authenticated data. Kind 2, a done-record: body = one or more sequence numbers
/// (u64 LE each) of token records in the same segment that are finished.
///
/// The CRC finds torn and corrupt frames without any key, so a frame that passes it and still
/// does not open was sealed under a secret we no longer have (`unreadable`), not damaged (`corrupt`).
enum SpoolFormat {
    static let magic: [UInt8] = Array("CRSP".utf8)
    static let version: UInt8 = 1
    static let headerSize = 8
    static var header: [UInt8] { magic + [version, 0, 0, 0] }

    /// Bytes around a frame's body: length, kind, crc.
    static let frameOverhead = 4 + 1 + 4
    /// Bytes around a token: frame, sequence, nonce, tag, loggedOutAt.
    static let tokenRecordOverhead = frameOverhead + 8 + 12 + 16 + 8
    /// Bigger than any token a cookie can carry (cookies are limited to a few KiB) or any
    /// done-record we write; a length past it is damage, and the rest of the segment is not trusted.
    static let maximumBodySize = 64 * 1024

    enum Kind: UInt8 {
        case token = 1
        case done = 2
    }

    /// One frame as read back.
    enum Frame: Equatable {
        /// A token record: its sequence number and its sealed box (nonce, ciphertext, tag).
        case token(sequence: UInt64, sealed: [UInt8])
        case done(sequences: [UInt64])
    }

    /// What reading a segment found.
    struct Scan: Equatable {
        var frames: [Frame] = []
        /// Frames skipped (bad checksum, unknown kind, malformed body) or cut off (torn tail,
        /// implausible length: the rest of the segment counts as one).
        var corrupt = 0
        /// Where the last whole frame ends: a torn tail starts here.
        var validLength = 0
        /// False when the header is missing or foreign (the file is not one of ours to read).
        var headerValid = true
    }

    static func frame(kind: Kind, body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frameOverhead + body.count)
        appendLittleEndian(UInt32(body.count), to: &bytes)
        bytes.append(kind.rawValue)
        bytes += body
        var crc = CRC32C()
        crc.update(bytes[4...])
        appendLittleEndian(crc.value, to: &bytes)
        return bytes
    }

    static func tokenFrame(sequence: UInt64, sealed: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(8 + sealed.count)
        appendLittleEndian(sequence, to: &body)
        body += sealed
        return frame(kind: .token, body: body)
    }

    static func doneFrame(sequences: [UInt64]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(8 * sequences.count)
        for sequence in sequences { appendLittleEndian(sequence, to: &body) }
        return frame(kind: .done, body: body)
    }

    /// The plaintext sealed in a token record.
    static func plaintext(token: AccessToken, loggedOutAt: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + token.value.utf8.count)
        appendLittleEndian(UInt64(bitPattern: loggedOutAt), to: &bytes)
        bytes += token.value.utf8
        return bytes
    }

    /// The sequence number as the authenticated data of its seal, so a sealed box cannot be
    /// moved to another record unnoticed.
    static func associatedData(sequence: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        appendLittleEndian(sequence, to: &bytes)
        return bytes
    }

    /// Reads every frame of a segment's bytes, skipping the damaged ones.
    static func scan(_ bytes: [UInt8]) -> Scan {
        var scan = Scan()
        guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic, bytes[4] == version else {
            scan.headerValid = false
            return scan
        }
        var offset = headerSize
        scan.validLength = offset
        while offset < bytes.count {
            guard bytes.count - offset >= 5 else {
                scan.corrupt += 1  // torn inside the length or kind
                break
            }
            let length = Int(readLittleEndian(UInt32.self, bytes, at: offset))
            guard length <= maximumBodySize else {
                scan.corrupt += 1  // damage in a length: nothing after it can be framed
                break
            }
            let end = offset + frameOverhead + length
            guard end <= bytes.count else {
                scan.corrupt += 1  // torn tail
                break
            }
            var crc = CRC32C()
            crc.update(bytes[(offset + 4)..<(end - 4)])
            let stored = readLittleEndian(UInt32.self, bytes, at: end - 4)
            defer {
                offset = end
                scan.validLength = end
            }
            guard crc.value == stored, let frame = decode(kind: bytes[offset + 4], body: bytes[(offset + 5)..<(end - 4)]) else {
                scan.corrupt += 1
                continue
            }
            scan.frames.append(frame)
        }
        return scan
    }

    /// Exactly one whole frame, as `frame(kind:body:)` wrote it: nil when its length, checksum or
    /// body does not hold (the record was damaged after it was written).
    static func readFrame(_ bytes: [UInt8]) -> Frame? {
        guard bytes.count >= frameOverhead,
            Int(readLittleEndian(UInt32.self, bytes, at: 0)) == bytes.count - frameOverhead
        else { return nil }
        var crc = CRC32C()
        crc.update(bytes[4..<(bytes.count - 4)])
        guard crc.value == readLittleEndian(UInt32.self, bytes, at: bytes.count - 4) else { return nil }
        return decode(kind: bytes[4], body: bytes[5..<(bytes.count - 4)])
    }

    private static func decode(kind: UInt8, body: ArraySlice<UInt8>) -> Frame? {
        switch Kind(rawValue: kind) {
        case .token:
            guard body.count > 8 + 12 + 16 else { return nil }
            let sequence = readLittleEndian(UInt64.self, Array(body), at: 0)
            return .token(sequence: sequence, sealed: Array(body.dropFirst(8)))
        case .done:
            guard !body.isEmpty, body.count % 8 == 0 else { return nil }
            let array = Array(body)
            let sequences = stride(from: 0, to: array.count, by: 8).map { readLittleEndian(UInt64.self, array, at: $0) }
            return .done(sequences: sequences)
        case nil:
            return nil
        }
    }

    static func appendLittleEndian<Integer: FixedWidthInteger>(_ value: Integer, to bytes: inout [UInt8]) {
        var value = value.littleEndian
        for _ in 0..<(Integer.bitWidth / 8) {
            bytes.append(UInt8(truncatingIfNeeded: value))
            value >>= 8
        }
    }

    static func readLittleEndian<Integer: FixedWidthInteger>(_: Integer.Type, _ bytes: [UInt8], at offset: Int) -> Integer {
        var value: Integer = 0
        for index in (0..<(Integer.bitWidth / 8)).reversed() {
            value = value << 8 | Integer(bytes[offset + index])
        }
        return value
    }
}

/// CRC-32C (Castagnoli), as Prometheus's WAL and ext4 use it; table-driven, one byte at a time.
struct CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            state = Self.table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
        }
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }
}
