import Crypto
import LogoutCore
import Testing

@testable import RevocationSpool

/// The framing as plain bytes: no file, no key.
@Suite struct SpoolFormatTests {
    @Test(arguments: [
        ("", UInt32(0)),
        ("123456789", UInt32(0xE306_9283)),  // the CRC-32C check value (RFC 3720 / iSCSI)
        ("a", UInt32(0xC1D0_4330)),
    ])
    func crc32cMatchesKnownValues(_ input: String, _ expected: UInt32) {
        var crc = CRC32C()
        crc.update(Array(input.utf8))
        #expect(crc.value == expected)
    }

    @Test func framesReadBackAsWritten() {
        let sealed = [UInt8](repeating: 0xAB, count: 12 + 16 + 20)
        let bytes = SpoolFormat.header + SpoolFormat.tokenFrame(sequence: 7, sealed: sealed)
            + SpoolFormat.doneFrame(sequences: [7, 9]) + SpoolFormat.tokenFrame(sequence: 8, sealed: sealed)
        let scan = SpoolFormat.scan(bytes)
        #expect(scan.frames == [.token(sequence: 7, sealed: sealed), .done(sequences: [7, 9]), .token(sequence: 8, sealed: sealed)])
        #expect(scan.corrupt == 0)
        #expect(scan.validLength == bytes.count)
        #expect(SpoolFormat.tokenFrame(sequence: 7, sealed: sealed).count == SpoolFormat.tokenRecordOverhead - 8 + 20)
    }

    @Test(arguments: [
        ([UInt8](), false),
        (Array("CRSP".utf8), false),
        (Array("CRSP".utf8) + [2, 0, 0, 0], false),  // a future version is not read
        (Array("XRSP".utf8) + [1, 0, 0, 0], false),
        (SpoolFormat.header, true),
    ])
    func headersAreChecked(_ bytes: [UInt8], _ valid: Bool) {
        #expect(SpoolFormat.scan(bytes).headerValid == valid)
    }

    @Test func aDoneRecordOfTheWrongShapeIsCorrupt() {
        let bytes = SpoolFormat.header + SpoolFormat.frame(kind: .done, body: [1, 2, 3])
        let scan = SpoolFormat.scan(bytes)
        #expect(scan.frames.isEmpty)
        #expect(scan.corrupt == 1)
    }

    @Test func sealedRecordsOpenOnlyUnderTheirSequenceAndKey() throws {
        let seal = SpoolSeal(secrets: [Fixtures.secret])
        let token = Fixtures.token("seal-me-please")
        let sealed = try seal.seal(token: token, loggedOutAt: -5, sequence: 3)
        #expect(seal.open(sealed, sequence: 3)?.token == token)
        #expect(seal.open(sealed, sequence: 3)?.loggedOutAt == -5)
        #expect(seal.open(sealed, sequence: 4) == nil)  // moved to another record
        #expect(SpoolSeal(secrets: [Fixtures.oldSecret]).open(sealed, sequence: 3) == nil)
        #expect(SpoolSeal(secrets: [Fixtures.oldSecret, Fixtures.secret]).open(sealed, sequence: 3)?.token == token)
        #expect(sealed.count == 12 + 8 + token.value.utf8.count + 16)
    }

    /// Sealed through libcrypto's reused context, a record is byte for byte what swift-crypto's
    /// `AES.GCM.seal` writes with the same nonce (the format of every record ever spooled),
    /// record after record on the same context.
    @Test func sealedRecordsAreSwiftCryptosGCM() throws {
        let seal = SpoolSeal(secrets: [Fixtures.secret, Fixtures.oldSecret])
        for (index, length) in [1, 7, 8, 40, 3000].enumerated() {
            let token = Fixtures.token(String(repeating: "t", count: length))
            let sequence = UInt64(index * 1000)
            let sealed = try seal.seal(token: token, loggedOutAt: 1_700_000_000_000 + Int64(index), sequence: sequence)
            let expected = try AES.GCM.seal(
                SpoolFormat.plaintext(token: token, loggedOutAt: 1_700_000_000_000 + Int64(index)), using: Fixtures.secret.spoolKey,
                nonce: AES.GCM.Nonce(data: sealed[..<12]), authenticating: SpoolFormat.associatedData(sequence: sequence))
            #expect(sealed == Array(try #require(expected.combined)))
        }
    }
}
