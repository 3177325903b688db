import CEpoll
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// One epoll set shared by every worker: the listening socket and the idle kept connections,
/// each registered one-shot, so that an event wakes one worker and disarms its descriptor
/// until that worker arms it again. A descriptor is thus never served by two workers at once.
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
    private let listener: Int32
    /// The listener's user data: no connection ticket has all 64 bits set (descriptors are
    /// below 2³¹).
    private static let listenerData = UInt64.max
    private static let connectionEvents = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue

    init(listener: Int32) throws(SystemError) {
        descriptor = try systemCall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        self.listener = listener
        do throws(SystemError) {
            try control(EPOLL_CTL_ADD, listener, events: EPOLLIN.rawValue | EPOLLONESHOT.rawValue, data: Self.listenerData)
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

    /// Arms the listener again, after its worker accepted.
    func rearmListener() {
        try? control(EPOLL_CTL_MOD, listener, events: EPOLLIN.rawValue | EPOLLONESHOT.rawValue, data: Self.listenerData)
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
