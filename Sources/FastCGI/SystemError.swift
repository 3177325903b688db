#if canImport(Glibc)
import Glibc
#endif

/// A system or libfcgi call that failed, with the call's name and its errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32

    public var description: String {
        "\(operation): \(String(cString: strerror(code)))"
    }
}

/// Routes a C return value through one place: negative means failure, reported with `errno`.
@discardableResult
func check<Result: BinaryInteger>(_ operation: String, _ result: Result) throws(SystemError) -> Result {
    guard result >= 0 else { throw SystemError(operation: operation, code: errno) }
    return result
}
