#if canImport(Glibc)
import Glibc
#endif

/// A system or libfcgi call that failed: the call's name and its `errno` (or returned code).
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    public let code: Int32

    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(code)))"
    }
}
