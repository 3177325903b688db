import CEpoll
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// One epoll set shared by every worker: the listening socket and the idle kept connections.
///
/// Connections are registered one-shot: an event wakes one worker and disarms its descriptor
/// until that worker arms it again, so a connection is never served by two workers at once.
/// The listener is level-triggered and non-blocking, so that every free worker can accept at
/// once (a one-shot listener, armed again after each accept, let only one worker accept at a
/// time: through nginx with `keepalive 2`, 12k requests/s against the closing mode's 20k);
/// a worker that loses the race for a connection gets `EAGAIN`. `EPOLLEXCLUSIVE` wakes one
/// process, not all, when several share the socket.
final class ReadinessSet: Sendable {
    /// What a worker woke up for.
    enum Event: Equatable {
        /// A connection waits in the listening socket's backlog.
        case listener
        /// A parked connection has input or end of file (`readable`); `hungUp`: the peer shut
        /// its side down (nginx closing an idle connection), or the connection failed.
        case connection(ParkedConnections.Ticket, readable: Bool, hungUp: Bool)
    }

    private let descriptor: Int32
    /// The listener's user data: no connection ticket has all 64 bits set (descriptors are
    /// below 2³¹).
    private static let listenerData = UInt64.max
    private static let connectionEvents = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue

    init(listener: Int32) throws(SystemError) {
        descriptor = try systemCall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do throws(SystemError) {
            try systemCall("fcntl(F_SETFL)") { fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK) }
            try control(EPOLL_CTL_ADD, listener, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue, data: Self.listenerData)
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    /// Waits at most `duration` for one event; nil when none came.
    func next(within duration: Duration) -> Event? {
        var event = epoll_event()
        let timeout = duration <= .zero ? 0 : Int32(clamping: duration.roundedUpMilliseconds)
        let ready = try? systemCall("epoll_wait", retryingOnInterrupt: true) { epoll_wait(descriptor, &event, 1, timeout) }
        guard let ready, ready == 1 else { return nil }
        if event.data.u64 == Self.listenerData { return .listener }
        let hangUps = EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue
        return .connection(
            ParkedConnections.Ticket(data: event.data.u64),
            readable: event.events & EPOLLIN.rawValue != 0, hungUp: event.events & hangUps != 0)
    }

    /// Registers a connection not in the set yet (`EPOLL_CTL_ADD`), or arms one again that an
    /// event disarmed (`EPOLL_CTL_MOD`), carrying its new ticket.
    func arm(_ ticket: ParkedConnections.Ticket, registered: Bool) throws(SystemError) {
        try control(registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ticket.descriptor, events: Self.connectionEvents, data: ticket.data)
    }

    private func control(_ operation: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        try systemCall("epoll_ctl") { epoll_ctl(descriptor, operation, fd, &event) }
    }
}
