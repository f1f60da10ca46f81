// A lock-free log-scale latency histogram with percentiles, one per tier.
import Synchronization

/// A lock-free latency histogram: buckets on a log scale with four steps per power of two
/// (≤ 19 % apart), from 1 ns to about 4.6 hours.
public final class LatencyHistogram: Sendable {
    static let subBuckets = 4
    static let bucketCount = 64 * subBuckets
    private final class Cell: Sendable { let count = Atomic<Int>(0) }
    private let buckets: [Cell]

    package init() {
        buckets = (0..<Self.bucketCount).map { _ in Cell() }
    }

    /// The bucket of a duration in nanoseconds.
    static func bucket(_ nanos: UInt64) -> Int {
        let n = max(nanos, 1)
        let exponent = 63 - n.leadingZeroBitCount
        // The two bits below the leading one choose the step within the power of two.
        let fraction = exponent >= 2 ? Int((n >> UInt64(exponent - 2)) & 3) : Int((n << UInt64(2 - exponent)) & 3)
        return min(exponent * subBuckets + fraction, bucketCount - 1)
    }

    /// The upper bound of a bucket in nanoseconds.
    static func upperBound(_ bucket: Int) -> Double {
        let exponent = bucket / subBuckets, fraction = bucket % subBuckets
        return Double(UInt64(1) << UInt64(exponent)) * (1 + Double(fraction + 1) / Double(subBuckets))
    }

    /// Adds one sample.
    package func record(nanos: UInt64) {
        buckets[Self.bucket(nanos)].count.add(1, ordering: .relaxed)
    }

    /// The counts at one moment.
    package func snapshot() -> Snapshot {
        Snapshot(counts: buckets.map { $0.count.load(ordering: .relaxed) })
    }

    /// Counts per bucket, with percentiles.
    public struct Snapshot: Sendable, Hashable {
        /// Samples per bucket.
        public var counts: [Int]

        /// An empty histogram.
        public init() { counts = Array(repeating: 0, count: LatencyHistogram.bucketCount) }
        init(counts: [Int]) { self.counts = counts }

        /// How many samples.
        public var count: Int { counts.reduce(0, +) }

        /// The upper bound in microseconds of the bucket holding the `p` quantile (0...1),
        /// or nil without samples.
        public func percentileMicros(_ p: Double) -> Double? {
            let total = count
            guard total > 0 else { return nil }
            let rank = max(1, Int((Double(total) * p).rounded(.up)))
            var seen = 0
            for (i, c) in counts.enumerated() {
                seen += c
                if seen >= rank { return LatencyHistogram.upperBound(i) / 1000 }
            }
            return LatencyHistogram.upperBound(counts.count - 1) / 1000
        }

        /// The samples added between `earlier` and this snapshot.
        public func since(_ earlier: Snapshot) -> Snapshot {
            Snapshot(counts: zip(counts, earlier.counts).map { $0 - $1 })
        }
    }
}

extension ContinuousClock.Instant {
    /// Nanoseconds from this instant to now.
    var elapsedNanos: UInt64 {
        let d = ContinuousClock.now - self
        return UInt64(max(0, d.components.seconds)) * 1_000_000_000 + UInt64(max(0, d.components.attoseconds) / 1_000_000_000)
    }
}
