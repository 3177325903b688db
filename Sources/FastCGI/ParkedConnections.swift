/// The kept connections idle between two requests, oldest first: which worker may take one
/// when it turns readable (exactly one: the one whose ticket still matches), which have been
/// idle too long, and which one gives way when the set is full.
///
/// Pure: descriptors and instants in, descriptors out. ``KeptConnections`` holds it under a
/// lock and makes the epoll and close calls.
struct ParkedConnections {
    /// What a connection's epoll registration carries: its descriptor and which parking of it
    /// this is, so that an event arriving after the connection was taken, closed and its
    /// number reused matches nothing.
    struct Ticket: Equatable {
        let descriptor: Int32
        let generation: UInt32

        init(descriptor: Int32, generation: UInt32) {
            self.descriptor = descriptor
            self.generation = generation
        }

        /// epoll's 64-bit user data: the generation above the descriptor.
        init(data: UInt64) {
            descriptor = Int32(truncatingIfNeeded: data & 0xFFFF_FFFF)
            generation = UInt32(truncatingIfNeeded: data >> 32)
        }

        var data: UInt64 { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: descriptor)) }
    }

    /// Per descriptor number; a doubly linked list through `older` and `newer` keeps park order.
    private struct Slot {
        var generation: UInt32 = 0
        var isParked = false
        /// Its epoll registration is live: only then may it expire or be evicted (before that,
        /// the worker parking it is still between this table and `epoll_ctl`).
        var isArmed = false
        var parkedAt = ContinuousClock.Instant.now
        var older: Int32 = -1
        var newer: Int32 = -1
    }

    /// The most connections parked at once; past it the oldest is closed for the newest.
    let capacity: Int
    private var slots: [Slot] = []
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Parks `descriptor` as the newest, unarmed. Returns its ticket and, when the set was full,
    /// the oldest armed connection, removed, for the caller to close.
    mutating func park(_ descriptor: Int32, at now: ContinuousClock.Instant) -> (ticket: Ticket, evicted: Int32?) {
        let evicted = count >= capacity ? evictOldest() : nil
        let index = Int(descriptor)
        if index >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: index + 1 - slots.count)) }
        precondition(!slots[index].isParked, "a descriptor parked twice")
        slots[index].generation &+= 1
        slots[index].isParked = true
        slots[index].isArmed = false
        slots[index].parkedAt = now
        slots[index].older = newest
        slots[index].newer = -1
        if newest >= 0 { slots[Int(newest)].newer = descriptor } else { oldest = descriptor }
        newest = descriptor
        count += 1
        return (Ticket(descriptor: descriptor, generation: slots[index].generation), evicted)
    }

    /// Records that `ticket`'s registration is live. False when its connection was taken meanwhile.
    mutating func arm(_ ticket: Ticket) -> Bool {
        guard matches(ticket) else { return false }
        slots[Int(ticket.descriptor)].isArmed = true
        return true
    }

    /// Takes the connection an event is for: true, and it is the caller's, when `ticket` is
    /// its current parking; false when another worker, an expiry or an eviction had it first.
    mutating func take(_ ticket: Ticket) -> Bool {
        guard matches(ticket) else { return false }
        unlink(ticket.descriptor)
        return true
    }

    /// Removes and returns, oldest first, the armed connections parked at or before `cutoff`.
    mutating func expire(parkedBy cutoff: ContinuousClock.Instant) -> [Int32] {
        var expired: [Int32] = []
        while oldest >= 0, slots[Int(oldest)].isArmed, slots[Int(oldest)].parkedAt <= cutoff {
            expired.append(oldest)
            unlink(oldest)
        }
        return expired
    }

    /// Removes and returns the oldest armed connection (for a new one, or for a descriptor
    /// when the process has none left); nil when none is armed.
    mutating func evictOldest() -> Int32? {
        var candidate = oldest
        while candidate >= 0, !slots[Int(candidate)].isArmed { candidate = slots[Int(candidate)].newer }
        guard candidate >= 0 else { return nil }
        unlink(candidate)
        return candidate
    }

    /// Removes and returns every parked connection (at stop).
    mutating func removeAll() -> [Int32] {
        var all: [Int32] = []
        while oldest >= 0 {
            all.append(oldest)
            unlink(oldest)
        }
        return all
    }

    private func matches(_ ticket: Ticket) -> Bool {
        let index = Int(ticket.descriptor)
        return index >= 0 && index < slots.count && slots[index].isParked && slots[index].generation == ticket.generation
    }

    private mutating func unlink(_ descriptor: Int32) {
        let slot = slots[Int(descriptor)]
        if slot.older >= 0 { slots[Int(slot.older)].newer = slot.newer } else { oldest = slot.newer }
        if slot.newer >= 0 { slots[Int(slot.newer)].older = slot.older } else { newest = slot.older }
        slots[Int(descriptor)].isParked = false
        slots[Int(descriptor)].isArmed = false
        count -= 1
    }
}
