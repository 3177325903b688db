// Fuzzing "raw FastCGI bytes -> FastCGIRecordValidator", with libfcgi's own reading as the
// reference on every input the validator accepts.
//
// Built with `-D FUZZING` (see scripts/fuzz) this file exports libFuzzer's
// `LLVMFuzzerTestOneInput` and has no main. Built normally it is a replay tool,
// `RecordFuzz DIR...`, that runs every file of the given corpus directories through the same
// function. It imports CFastCGI itself (the one place besides the FastCGI module): the point is
// to compare with libfcgi, not to go through our wrapper.
//
// Invariants (a broken one is a `preconditionFailure`, which libFuzzer reports as a crash). The
// input is read as the gate reads a connection: each management record the validator answers
// is consumed, and the validator goes on with what follows it.
//  1. resuming over the input cut in pieces gives the same answers and verdict as reading it at once;
//  2. a complete request is complete at exactly its byte count, and needs more just before;
//  3. differential: what the validator accepts, libfcgi accepts too (`FCGX_Accept_r` over a
//     socketpair, given what the gate leaves of the input, as in production), as a RESPONDER,
//     with as many params as the validator counted pairs (plus the `FCGI_ROLE` libfcgi adds),
//     and without writing a byte (it never meets a management record). libfcgi only ever sees
//     accepted inputs: on the others it may abort, which is the bug the validator exists for;
//  4. differential: each `FCGI_GET_VALUES` the validator answers, libfcgi answers the same
//     (that record, then an empty request, through `FCGX_Accept_r`), wherever libfcgi's own
//     answer is sound (see `libfcgiAnswersSoundly`).

import CFastCGI
import FastCGI

#if canImport(Glibc)
import Glibc
#endif

import FuzzSupport

#if !FUZZING
import Foundation
#endif

enum RecordFuzz {
    static let initialized: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return FCGX_Init() == 0
    }()

    /// What the gate makes of an input: each management record answered (its byte range in the
    /// input, the answer), then the verdict on the rest, which starts at `rest`.
    struct Reading: Equatable {
        var answered: [Answered] = []
        var rest = 0
        var verdict = FastCGIRecordValidator.Verdict.needMore
        var pairCount = 0
    }

    struct Answered: Equatable {
        let record: Range<Int>
        let answer: [UInt8]
    }

    /// One fuzz input; whether the validator accepted it as a complete request.
    @discardableResult
    static func run(_ input: [UInt8]) -> Bool {
        let reading = read(input, inPieces: false)
        let resumed = read(input, inPieces: true)
        guard resumed == reading else { preconditionFailure("resuming gave \(resumed), at once \(reading)") }
        for answered in reading.answered where libfcgiAnswersSoundly(input[answered.record]) {
            checkAnswer(answered, to: input[answered.record])
        }
        guard case .complete(let count) = reading.verdict else { return false }
        let rest = Array(input[reading.rest...])
        guard FastCGIRecordValidator.validate(rest[..<count]) == .complete(byteCount: count), count > 0,
            FastCGIRecordValidator.validate(rest[..<(count - 1)]) == .needMore
        else { preconditionFailure("complete at \(count) but not exactly there") }
        guard let libfcgi = libfcgiReading(rest) else {
            preconditionFailure("the validator accepted what libfcgi refuses")
        }
        guard libfcgi.role == 1 else { preconditionFailure("libfcgi read role \(libfcgi.role)") }
        guard libfcgi.paramCount == reading.pairCount + 1 else {
            preconditionFailure("libfcgi read \(libfcgi.paramCount) params, the validator \(reading.pairCount) pairs")
        }
        guard libfcgi.written.isEmpty else { preconditionFailure("libfcgi answered \(libfcgi.written) to what the gate left") }
        return true
    }

    /// Reads the input as the gate does: at once, or in pieces cut at points taken from its own
    /// bytes (a peek that returns more each time); a management verdict consumes its record.
    static func read(_ input: [UInt8], inPieces: Bool) -> Reading {
        var validator = FastCGIRecordValidator()
        var reading = Reading()
        var end = 0
        var step = 0
        while true {
            if inPieces && end < input.count {
                end = min(input.count, end + 1 + Int(input[step % input.count] % 17))
                step += 1
            } else {
                end = input.count
            }
            let verdict = validator.advance(over: input[reading.rest..<end])
            if case .management(let answer, let count) = verdict {
                guard count > 0, count <= end - reading.rest else { preconditionFailure("management record of \(count) bytes") }
                reading.answered.append(Answered(record: reading.rest..<(reading.rest + count), answer: answer))
                reading.rest += count
                continue
            }
            if verdict != .needMore || end == input.count {
                reading.verdict = verdict
                reading.pairCount = validator.pairCount
                return reading
            }
        }
    }

    /// Whether libfcgi answers this management record soundly: `FCGI_GET_VALUES` only when no
    /// variable is asked twice (its answer goes into a 64-byte stack buffer) and no name holds
    /// `=` or NUL (it compares names up to the first of those). Never an unknown type: libfcgi
    /// reads its content as the request's bytes, and Debian's 2.4.2 leaks a params vector on
    /// each (`NewParams` before the type test, freed only for GET_VALUES), which LeakSanitizer
    /// reports; that answer is 16 fixed bytes, checked by FastCGIManagementRecordTests.
    static func libfcgiAnswersSoundly(_ record: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(record)
        guard bytes[1] == 9 else { return false }
        let length = Int(bytes[4]) << 8 | Int(bytes[5])
        var names: [[UInt8]] = []
        var index = 8
        func next() -> Int {
            if bytes[index] & 0x80 == 0 {
                index += 1
                return Int(bytes[index - 1])
            }
            index += 4
            return (1...4).reduce(0) { $0 << 8 | Int(bytes[index - 5 + $1]) } & 0x7FFF_FFFF
        }
        // The validator has checked the pairs fill the content exactly.
        while index < 8 + length {
            let nameLength = next()
            let valueLength = next()
            names.append(Array(bytes[index..<(index + nameLength)]))
            index += nameLength + valueLength
        }
        let known = names.filter { ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"].map { Array($0.utf8) }.contains($0) }
        return Set(known).count == known.count && !names.contains { $0.contains(UInt8(ascii: "=")) || $0.contains(0) }
    }

    /// libfcgi's answer to `record` equals the validator's, but for the padding's bytes: libfcgi
    /// sends its stack buffer's leftovers there.
    static func checkAnswer(_ answered: Answered, to record: ArraySlice<UInt8>) {
        let emptyRequest: [UInt8] = [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 4, 0, 1, 0, 0, 0, 0]
        guard let libfcgi = libfcgiReading(Array(record) + emptyRequest), libfcgi.role == 1 else {
            preconditionFailure("libfcgi refused a management record the validator answered")
        }
        let answer = answered.answer
        let unpadded = 8 + (Int(answer[4]) << 8 | Int(answer[5]))
        guard libfcgi.written.count == answer.count, libfcgi.written.prefix(unpadded) == answer.prefix(unpadded) else {
            preconditionFailure("libfcgi answered \(libfcgi.written), the validator \(answer)")
        }
    }

    /// What `FCGX_Accept_r` makes of `bytes` sent over a socketpair, and what it wrote back while
    /// reading them; nil when it refuses them.
    static func libfcgiReading(_ bytes: [UInt8]) -> (role: Int32, paramCount: Int, written: [UInt8])? {
        precondition(initialized, "FCGX_Init failed")
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { preconditionFailure("socketpair") }
        defer { close(fds[1]) }
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            guard written > 0 else { preconditionFailure("write to the socketpair") }
            sent += written
        }
        shutdown(fds[1], Int32(SHUT_WR))
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, -1, 0)
        request.pointee.keepConnection = 1
        request.pointee.ipcFd = fds[0]
        guard FCGX_Accept_r(request) >= 0 else { return nil }
        var count = 0
        while let envp = request.pointee.envp, envp[count] != nil { count += 1 }
        let role = request.pointee.role
        var written: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while case let got = recv(fds[1], &buffer, buffer.count, Int32(MSG_DONTWAIT)), got > 0 { written += buffer[..<got] }
        request.pointee.detached = 1  // close without libfcgi's lingering read
        FCGX_Free(request, 1)
        return (role, count, written)
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func recordFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    RecordFuzz.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// The `main` SwiftPM links this executable with (see `runLibFuzzer`).
@_cdecl("RecordFuzz_main")
public func recordFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc: argc, argv: argv, testOneInput: recordFuzzTestOneInput)
}
#else
/// Replays corpus directories (or single files) through the fuzz function.
@main
struct RecordFuzzReplay {
    static func main() {
        let (inputs, counted) = CorpusReplay.run(tool: "RecordFuzz", paths: Array(CommandLine.arguments.dropFirst())) { RecordFuzz.run($0) }
        print("RecordFuzz: replayed \(inputs) inputs (\(counted) accepted, each read the same by libfcgi), no invariant broken")
    }
}
#endif
