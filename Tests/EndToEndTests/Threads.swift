import Foundation
import Synchronization

/// Runs `body(0..<count)` on `count` threads at once and returns the results in index order.
func onThreads<Value: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> Value) -> [Value] {
    let results = ThreadResults<Value>()
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            let value = body(index)
            results.values.withLock { $0[index] = value }
            group.leave()
        }
        thread.start()
    }
    group.wait()
    return results.values.withLock { values in (0..<count).map { values[$0]! } }
}

private final class ThreadResults<Value: Sendable>: Sendable {
    let values = Mutex<[Int: Value]>([:])
}

/// A counter threads share.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}
