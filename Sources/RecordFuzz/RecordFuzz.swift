// Fuzzing "raw FastCGI bytes -> FastCGIRecordValidator", with libfcgi's own reading as the
// reference on every input the validator accepts.
//
// Built with `-D FUZZING` (see scripts/fuzz) this file exports libFuzzer's
// `LLVMFuzzerTestOneInput` and has no main. Built normally it is a replay tool,
// `RecordFuzz DIR...`, that runs every file of the given corpus directories through the same
// function. It imports CFastCGI itself (the one place besides the FastCGI module): the point is
// to compare with libfcgi, not to go through our wrapper.
//
// Invariants (a broken one is a `preconditionFailure`, which libFuzzer reports as a crash):
//  1. resuming over the input cut in pieces gives the same verdict as reading it at once;
//  2. a complete request is complete at exactly its byte count, and needs more just before;
//  3. differential: what the validator accepts, libfcgi accepts too (`FCGX_Accept_r` over a
//     socketpair), as a RESPONDER, with as many params as the validator counted pairs
//     (plus the `FCGI_ROLE` libfcgi adds). libfcgi only ever sees accepted inputs: on the others
//     it may abort, which is the bug the validator exists for.

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

    /// One fuzz input; whether the validator accepted it as a complete request.
    @discardableResult
    static func run(_ input: [UInt8]) -> Bool {
        var validator = FastCGIRecordValidator()
        let verdict = validator.advance(over: input)
        checkResuming(input, expected: verdict)
        guard case .complete(let count) = verdict else { return false }
        guard FastCGIRecordValidator.validate(input[..<count]) == verdict, count > 0,
            FastCGIRecordValidator.validate(input[..<(count - 1)]) == .needMore
        else { preconditionFailure("complete at \(count) but not exactly there") }
        guard let reading = libfcgiReading(input) else {
            preconditionFailure("the validator accepted what libfcgi refuses")
        }
        guard reading.role == 1 else { preconditionFailure("libfcgi read role \(reading.role)") }
        guard reading.paramCount == validator.pairCount + 1 else {
            preconditionFailure("libfcgi read \(reading.paramCount) params, the validator \(validator.pairCount) pairs")
        }
        return true
    }

    /// Cuts the input at points taken from its own bytes and resumes over each longer prefix.
    static func checkResuming(_ input: [UInt8], expected: FastCGIRecordValidator.Verdict) {
        var validator = FastCGIRecordValidator()
        var end = 0
        var verdict = FastCGIRecordValidator.Verdict.needMore
        var step = 0
        while end < input.count {
            end = min(input.count, end + 1 + Int(input[step % input.count] % 17))
            step += 1
            verdict = validator.advance(over: input[..<end])
            if verdict != .needMore { break }
        }
        guard verdict == expected else { preconditionFailure("resuming gave \(verdict), at once \(expected)") }
    }

    /// What `FCGX_Accept_r` makes of `bytes` sent over a socketpair; nil when it refuses them.
    static func libfcgiReading(_ bytes: [UInt8]) -> (role: Int32, paramCount: Int)? {
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
        request.pointee.detached = 1  // close without libfcgi's lingering read
        FCGX_Free(request, 1)
        return (role, count)
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
