import Synchronization

/// One progress counter per worker, which the worker bumps each time its accept wait returns
/// (a connection, or the idle poll interval passing) and each time it finishes a connection.
/// The watchdog reads them to tell workers that still accept and answer from wedged ones.
///
/// Bumping is one relaxed atomic add on the worker's own counter: no clock, no lock.
public final class WorkerHeartbeats: Sendable {
    private final class Beat: Sendable {
        let count = Atomic<UInt64>(0)
    }

    private let beats: [Beat]
    private let parked = Atomic<Bool>(false)

    public init(workers: Int) {
        beats = (0..<max(workers, 0)).map { _ in Beat() }
    }

    /// How many workers this tracks.
    public var count: Int { beats.count }

    /// Worker `index` made progress.
    @inline(__always)
    func beat(_ index: Int) {
        beats[index].count.add(1, ordering: .relaxed)
    }

    /// Every worker's counter, in worker order.
    public func snapshot() -> [UInt64] {
        beats.map { $0.count.load(ordering: .relaxed) }
    }

    /// Test only (`CROCANTE_TEST_WEDGE_PATH`): every worker stops at its next loop turn and never
    /// serves again, as if all were stuck, so that the watchdog's kill can be tested. Nothing in
    /// production calls it.
    public func parkAll() {
        parked.store(true, ordering: .relaxed)
    }

    /// Whether `parkAll()` was called: one relaxed load per accept-loop turn.
    @inline(__always)
    var isParked: Bool { parked.load(ordering: .relaxed) }
}
