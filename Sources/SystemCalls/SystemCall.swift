#if canImport(Glibc)
import Glibc
#endif

/// The one door to the kernel: runs a C call that returns a negative value on failure and
/// reads `errno` immediately after it, before anything else (not even the operation's name,
/// which is an autoclosure for that reason) can overwrite it.
///
/// - Parameters:
///   - operation: the call's name for the error, built only on failure.
///   - retryingOnInterrupt: calls again while it fails with `EINTR`.
@discardableResult
public func systemCall<Result: BinaryInteger>(
    _ operation: @autoclosure () -> String, retryingOnInterrupt: Bool = false, _ call: () -> Result
) throws(SystemError) -> Result {
    while true {
        let result = call()
        guard result < 0 else { return result }
        let code = errno
        if retryingOnInterrupt && code == EINTR { continue }
        throw SystemError(operation: operation(), code: code)
    }
}

/// The same door for C calls that return a pointer, nil on failure (`opendir`, `fdopen`).
public func systemCall<Pointer>(_ operation: @autoclosure () -> String, _ call: () -> Pointer?) throws(SystemError) -> Pointer {
    guard let pointer = call() else {
        let code = errno
        throw SystemError(operation: operation(), code: code)
    }
    return pointer
}
