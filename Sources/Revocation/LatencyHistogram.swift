/// Backend call latency in fixed buckets, as a Prometheus histogram exposes it: cumulative
/// counts per upper bound, the total count and the sum of every observation.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds, Prometheus's default buckets: 5 ms to 10 s.
    public static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Observations in each bucket alone, plus one for above the last bound.
    private var perBucket = [Int](repeating: 0, count: LatencyHistogram.bounds.count + 1)
    /// Every observation's seconds added up.
    public private(set) var sum: Double = 0
    /// Observations made.
    public private(set) var count = 0

    public init() {}

    package mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let value = max(0, Double(seconds) + Double(attoseconds) / 1e18)
        let index = Self.bounds.firstIndex { value <= $0 } ?? Self.bounds.count
        perBucket[index] += 1
        sum += value
        count += 1
    }

    /// Observations at or below each of `bounds`, in order (`le` buckets); `+Inf` is `count`.
    public var cumulative: [Int] {
        var total = 0
        return Self.bounds.indices.map { index in
            total += perBucket[index]
            return total
        }
    }
}
