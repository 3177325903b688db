import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension TestStack {
    /// The responder's environment: the defaults, the options' settings, then `overrides`.
    func responderEnvironment(_ overrides: [String: String] = [:]) -> [String: String] {
        var environment = Self.defaultEnvironment
        environment["CROCANTE_LISTEN"] = heldSocket == nil ? fastcgiAddress : "auto"
        environment.merge(options.environment) { $1 }
        environment.merge(overrides) { $1 }
        for name in options.unsetEnvironment { environment[name] = nil }
        return environment.mapValues { $0.replacingOccurrences(of: "{backend}", with: "127.0.0.1:\(backendPort)") }
    }

    /// Starts a responder (again) with the stack's settings and `overrides`, and waits until it
    /// has notified readiness. On a held socket this is a restart that keeps the socket open.
    /// - Parameter launcher: a command that ends by exec'ing its arguments (e.g. `unshare -m … sh -c '…; exec "$0" "$@"'`),
    ///   run in front of the responder; the pid stays the responder's.
    @discardableResult
    func startResponder(_ overrides: [String: String] = [:], launcher: [String] = []) throws -> Responder {
        let binary = Harness.product("crocante-logout")
        let environment = responderEnvironment(overrides)
        let name = "responder-\(responders.count)"
        // The launcher runs first and execs what would have run.
        func launched(_ executable: URL, _ arguments: [String]) -> (URL, [String]) {
            guard let first = launcher.first else { return (executable, arguments) }
            return (URL(fileURLWithPath: first), Array(launcher.dropFirst()) + [executable.path] + arguments)
        }
        let responder: Responder
        switch (options.listen, heldSocket) {
        case (.standardInputSocket, let socket?):
            let (executable, arguments) = launched(binary, options.responderArguments)
            responder = try Responder(
                executable, arguments, environment: environment, directory: directory, name: name,
                standardInput: FileHandle(fileDescriptor: socket, closeOnDealloc: false))
        case (_, let socket?):
            // As systemd does: the socket at fd 3, LISTEN_FDS=1, LISTEN_PID the responder's own pid
            // (sh sets it, then execs the responder in its place, keeping the pid).
            let (executable, arguments) = launched(
                URL(fileURLWithPath: "/bin/sh"),
                ["-c", #"exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@""#, binary.path] + options.responderArguments)
            responder = try Responder(
                executable, arguments, environment: environment, directory: directory, name: name,
                standardInput: FileHandle(fileDescriptor: socket, closeOnDealloc: false))
        default:
            let (executable, arguments) = launched(binary, options.responderArguments)
            responder = try Responder(executable, arguments, environment: environment, directory: directory, name: name)
        }
        responders.append(responder)
        try responder.waitUntilReady()
        return responder
    }

    /// Sends `signal` to the current responder, waits for it to exit, and reads its final totals.
    @discardableResult
    func stopResponder(_ signal: Int32 = SIGTERM) -> (status: Int32?, totals: ResponderTotals?) {
        responder.send(signal)
        let status = responder.waitForExit()
        return (status, responder.totals)
    }
}
