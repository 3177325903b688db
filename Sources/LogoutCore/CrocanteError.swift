/// Every way crocante-logout refuses to start or to do what it was asked.
///
/// A description names the setting or the operation and why; it never holds a cookie, a
/// token or a secret, so any of these can be logged as it is.
public enum CrocanteError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A required setting is absent.
    case missingSetting(String)
    /// A setting is present but unusable.
    case invalidSetting(String, reason: String)
    /// The listening socket could not be created or inherited.
    case cannotListen(address: String, reason: String)
    /// The process could not set itself up: a thread, libfcgi, a resource of the system.
    case cannotStart(operation: String, reason: String)
    /// A token or cookie could not be sealed (the `seal` subcommand).
    case cannotSeal(reason: String)

    public var description: String {
        switch self {
        case .missingSetting(let name):
            return "\(name) is not set"
        case .invalidSetting(let name, let reason):
            return "\(name) is invalid: \(reason)"
        case .cannotListen(let address, let reason):
            return "cannot listen on \(address): \(reason)"
        case .cannotStart(let operation, let reason):
            return "cannot start: \(operation): \(reason)"
        case .cannotSeal(let reason):
            return "cannot seal: \(reason)"
        }
    }
}

extension CrocanteError {
    /// For `.invalidSetting`, the reason alone (the setting table prefixes the quoted value).
    public var reason: String {
        if case .invalidSetting(_, let reason) = self { return reason }
        return description
    }
}
