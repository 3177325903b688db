import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// The service manager's readiness protocol (`sd_notify`), spoken directly: one datagram to
/// `$NOTIFY_SOCKET`, so `Type=notify` needs no libsystemd.
public enum SystemdNotify {
    /// Sends `state` (e.g. `READY=1`) when `NOTIFY_SOCKET` is set; does nothing otherwise.
    /// Returns whether a datagram was sent.
    @discardableResult
    public static func send(_ state: String, environment: [String: String]) -> Bool {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty,
            let fd = try? systemCall("socket(AF_UNIX, SOCK_DGRAM)", {
                socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            })
        else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = try? SocketAddress.unix(path: path).withSockaddr { address, length throws(SystemError) in
            try systemCall("sendto(NOTIFY_SOCKET)") {
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), address, length) }
            }
        }
        return sent == message.count
    }
}
