import Testing

@testable import FastCGI

@Suite struct ParkedConnectionsTests {
    static let start = ContinuousClock.now

    static func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    /// Parks and arms, as `KeptConnections.park` does once its `epoll_ctl` succeeded.
    static func parked(_ table: inout ParkedConnections, _ descriptor: Int32, at milliseconds: Int) -> ParkedConnections.Ticket {
        let (ticket, evicted) = table.park(descriptor, at: at(milliseconds))
        #expect(evicted == nil)
        let armed = table.arm(ticket)
        #expect(armed)
        return ticket
    }

    /// One event, one worker: the first take wins, a second take of the same ticket finds nothing.
    @Test func aParkedConnectionIsTakenOnce() {
        var table = ParkedConnections(capacity: 8)
        let ticket = Self.parked(&table, 7, at: 0)
        #expect(table.count == 1)
        let taken = table.take(ticket)
        #expect(taken)
        let takenAgain = table.take(ticket)
        #expect(!takenAgain)
        #expect(table.count == 0)
    }

    /// An event queued for a connection closed since, whose number was reused and parked again,
    /// must not take the new connection.
    @Test func aStaleTicketDoesNotTakeTheNumberReused() {
        var table = ParkedConnections(capacity: 8)
        let old = Self.parked(&table, 5, at: 0)
        let expired = table.expire(parkedBy: Self.at(10))
        #expect(expired == [5])
        let reused = Self.parked(&table, 5, at: 20)
        #expect(old != reused && old.descriptor == reused.descriptor)
        let takenByTheStaleTicket = table.take(old)
        #expect(!takenByTheStaleTicket)
        let takenByTheCurrentTicket = table.take(reused)
        #expect(takenByTheCurrentTicket)
    }

    @Test func ticketsRoundTripThroughEpollData() {
        let ticket = ParkedConnections.Ticket(descriptor: 123_456, generation: .max)
        #expect(ParkedConnections.Ticket(data: ticket.data) == ticket)
        #expect(ticket.data != .max, "a ticket never looks like the listener's data")
    }

    /// Idle past the limit, oldest first; a connection taken or not yet armed is never closed
    /// under a worker.
    @Test func onlyArmedConnectionsIdlePastTheCutoffExpire() {
        var table = ParkedConnections(capacity: 8)
        let first = Self.parked(&table, 3, at: 0)
        _ = Self.parked(&table, 4, at: 10)
        _ = Self.parked(&table, 9, at: 30)
        let taken = table.take(first)
        #expect(taken)
        let expiredBy20 = table.expire(parkedBy: Self.at(20))
        #expect(expiredBy20 == [4])
        let (unarmed, _) = table.park(11, at: Self.at(40))
        let expiredBy100 = table.expire(parkedBy: Self.at(100))
        #expect(expiredBy100 == [9], "the one still arming stays")
        let armed = table.arm(unarmed)
        #expect(armed)
        let expiredOnceArmed = table.expire(parkedBy: Self.at(100))
        #expect(expiredOnceArmed == [11])
        #expect(table.count == 0)
    }

    /// Full: the oldest armed connection gives way to the newest (nginx reuses its most recent
    /// connections first, so the oldest is the one it is least likely to send on).
    @Test func aFullSetClosesItsOldestForTheNewest() {
        var table = ParkedConnections(capacity: 2)
        _ = Self.parked(&table, 3, at: 0)
        _ = Self.parked(&table, 4, at: 1)
        let (ticket, evicted) = table.park(5, at: Self.at(2))
        #expect(evicted == 3)
        let armed = table.arm(ticket)
        #expect(armed)
        #expect(table.count == 2)
        let evictedLater = table.evictOldest()
        #expect(evictedLater == 4)
        let remaining = table.removeAll()
        #expect(remaining == [5])
        let evictedFromNone = table.evictOldest()
        #expect(evictedFromNone == nil)
    }

    /// A connection taken while its parking worker was between the table and `epoll_ctl` is not
    /// marked armed by that worker afterwards.
    @Test func armingAfterATakeChangesNothing() {
        var table = ParkedConnections(capacity: 4)
        let (ticket, _) = table.park(6, at: Self.at(0))
        let taken = table.take(ticket)
        #expect(taken)
        let armedAfterTheTake = table.arm(ticket)
        #expect(!armedAfterTheTake)
        #expect(table.count == 0)
    }

    /// A quarter of the descriptors (256 at least) stays free for everything but parked connections.
    @Test(arguments: [(1024, 768), (16384, 12288), (200, 16), (0, 16)])
    func capacityLeavesDescriptorsForTheRest(limit: Int, capacity: Int) {
        #expect(KeptConnections.capacity(openFileLimit: limit) == capacity)
    }
}
