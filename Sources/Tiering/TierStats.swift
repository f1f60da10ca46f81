// Counters of the tiers (hits, misses, bytes, latencies), for the whole cache stack and per query,
// and the swift-metrics series the stack's counters are reported to.
import Metrics
import Synchronization

/// Counters of one cache stack, updated lock-free; ``snapshot()`` reads them all.
///
/// A stack's counters are also reported through swift-metrics (a no-op unless the application
/// bootstrapped a backend): `vecgo_tier_hits_total` and `vecgo_tier_misses_total` with a
/// `tier` dimension (`ram`, `disk`), `vecgo_remote_requests_total`, `vecgo_remote_bytes_total`
/// and the timer `vecgo_remote_request_duration_seconds`.
public final class TierStats: Sendable {
    let ramHits = Atomic<Int>(0), ramMisses = Atomic<Int>(0), ramEvictions = Atomic<Int>(0)
    let diskHits = Atomic<Int>(0), diskMisses = Atomic<Int>(0), diskWrites = Atomic<Int>(0)
    let diskCorrupt = Atomic<Int>(0), diskEvictions = Atomic<Int>(0), diskDropped = Atomic<Int>(0)
    let remoteRequests = Atomic<Int>(0), remoteBytes = Atomic<Int>(0), healed = Atomic<Int>(0)
    let ramBytes = Atomic<Int>(0), diskBytes = Atomic<Int>(0)
    let ramLatency = LatencyHistogram(), diskLatency = LatencyHistogram(), remoteLatency = LatencyHistogram()

    /// Where this stack's updates are reported (nil for the counters of one query).
    let metrics: TierMetrics?

    /// Counters of a cache stack, reported through swift-metrics too.
    package init() { metrics = TierMetrics() }

    /// Counters of one query: not reported (the stack's own counters are).
    init(reportingMetrics: Bool) { metrics = reportingMetrics ? TierMetrics() : nil }

    /// The counters at one moment.
    public struct Snapshot: Sendable, Hashable, CustomStringConvertible {
        /// RAM blocks served from memory.
        public var ramHits = 0
        /// RAM blocks not in memory.
        public var ramMisses = 0
        /// RAM blocks evicted to stay under the budget.
        public var ramEvictions = 0
        /// Disk block lookups that found every page asked for in the cache directory.
        public var diskHits = 0
        /// Disk block lookups that did not find every page asked for (the rest went to the
        /// remote store), or that were not made because there is no disk cache.
        public var diskMisses = 0
        /// Disk block files written (each write merges new pages into the block's file).
        public var diskWrites = 0
        /// Disk block files found damaged, evicted and refetched.
        public var diskCorrupt = 0
        /// Disk blocks evicted to stay under the size limit.
        public var diskEvictions = 0
        /// Disk writes (runs of pages) dropped because the write queue was full.
        public var diskDropped = 0
        /// Reads whose bytes failed their check, were dropped from every tier and read again
        /// from the remote store (``CachingStore/readChecked(_:ranges:_:)``).
        public var healed = 0
        /// Requests sent to the remote store (each ranged GET, whole-object read and listing).
        public var remoteRequests = 0
        /// Bytes received from the remote store.
        public var remoteBytes = 0
        /// Bytes served from RAM blocks.
        public var ramBytes = 0
        /// Bytes served from disk block files, by lookups that found all or some of their pages.
        public var diskBytes = 0
        /// Latency of reads served wholly from RAM.
        public var ramLatency = LatencyHistogram.Snapshot()
        /// Latency of disk block lookups that served pages.
        public var diskLatency = LatencyHistogram.Snapshot()
        /// Latency of remote requests.
        public var remoteLatency = LatencyHistogram.Snapshot()

        /// All counters zero.
        public init() {}

        /// The change from `earlier` to this snapshot.
        public func since(_ earlier: Snapshot) -> Snapshot {
            var d = Snapshot()
            d.ramHits = ramHits - earlier.ramHits
            d.ramMisses = ramMisses - earlier.ramMisses
            d.ramEvictions = ramEvictions - earlier.ramEvictions
            d.diskHits = diskHits - earlier.diskHits
            d.diskMisses = diskMisses - earlier.diskMisses
            d.diskWrites = diskWrites - earlier.diskWrites
            d.diskCorrupt = diskCorrupt - earlier.diskCorrupt
            d.diskEvictions = diskEvictions - earlier.diskEvictions
            d.diskDropped = diskDropped - earlier.diskDropped
            d.healed = healed - earlier.healed
            d.remoteRequests = remoteRequests - earlier.remoteRequests
            d.remoteBytes = remoteBytes - earlier.remoteBytes
            d.ramBytes = ramBytes - earlier.ramBytes
            d.diskBytes = diskBytes - earlier.diskBytes
            d.ramLatency = ramLatency.since(earlier.ramLatency)
            d.diskLatency = diskLatency.since(earlier.diskLatency)
            d.remoteLatency = remoteLatency.since(earlier.remoteLatency)
            return d
        }

        public var description: String {
            "ram \(ramHits) hits / \(ramMisses) misses, disk \(diskHits) hits / \(diskMisses) misses, remote \(remoteRequests) requests / \(remoteBytes) bytes"
        }
    }

    /// The counters of the query running in this task (and its child tasks), when it asked for
    /// them: every update to a ``TierStats`` is also added there.
    @TaskLocal package static var query: QueryCounters?

    func ram(hit: Bool, bytes: Int = 0) {
        countRAM(hit: hit, bytes: bytes)
        metrics?.ram(hit: hit)
        Self.query?.counts.countRAM(hit: hit, bytes: bytes)
    }

    /// A read served wholly from RAM, and how long it took.
    func ramRead(nanos: UInt64) {
        ramLatency.record(nanos: nanos)
        Self.query?.counts.ramLatency.record(nanos: nanos)
    }

    func disk(hit: Bool, bytes: Int = 0, nanos: UInt64? = nil) {
        countDisk(hit: hit, bytes: bytes, nanos: nanos)
        metrics?.disk(hit: hit)
        Self.query?.counts.countDisk(hit: hit, bytes: bytes, nanos: nanos)
    }

    func remote(bytes: Int, nanos: UInt64? = nil) {
        countRemote(bytes: bytes, nanos: nanos)
        metrics?.remote(bytes: bytes, nanos: nanos)
        Self.query?.counts.countRemote(bytes: bytes, nanos: nanos)
    }

    private func countRAM(hit: Bool, bytes: Int) {
        if hit {
            ramHits.bump()
            ramBytes.bump(bytes)
        } else {
            ramMisses.bump()
        }
    }
    private func countDisk(hit: Bool, bytes: Int, nanos: UInt64?) {
        if hit { diskHits.bump() } else { diskMisses.bump() }
        diskBytes.bump(bytes)
        if let nanos { diskLatency.record(nanos: nanos) }
    }
    private func countRemote(bytes: Int, nanos: UInt64?) {
        remoteRequests.bump()
        remoteBytes.bump(bytes)
        if let nanos { remoteLatency.record(nanos: nanos) }
    }

    /// Reads every counter.
    package func snapshot() -> Snapshot {
        var s = Snapshot()
        s.ramHits = ramHits.load(ordering: .relaxed)
        s.ramMisses = ramMisses.load(ordering: .relaxed)
        s.ramEvictions = ramEvictions.load(ordering: .relaxed)
        s.diskHits = diskHits.load(ordering: .relaxed)
        s.diskMisses = diskMisses.load(ordering: .relaxed)
        s.diskWrites = diskWrites.load(ordering: .relaxed)
        s.diskCorrupt = diskCorrupt.load(ordering: .relaxed)
        s.diskEvictions = diskEvictions.load(ordering: .relaxed)
        s.diskDropped = diskDropped.load(ordering: .relaxed)
        s.healed = healed.load(ordering: .relaxed)
        s.remoteRequests = remoteRequests.load(ordering: .relaxed)
        s.remoteBytes = remoteBytes.load(ordering: .relaxed)
        s.ramBytes = ramBytes.load(ordering: .relaxed)
        s.diskBytes = diskBytes.load(ordering: .relaxed)
        s.ramLatency = ramLatency.snapshot()
        s.diskLatency = diskLatency.snapshot()
        s.remoteLatency = remoteLatency.snapshot()
        return s
    }
}

/// Counters of one query: set ``TierStats/query`` to an instance while the query runs, then
/// read ``snapshot()``. Reads shared with a concurrent query are counted by the query that
/// made them.
package final class QueryCounters: Sendable {
    let counts = TierStats(reportingMetrics: false)
    package init() {}
    /// The counters so far.
    package func snapshot() -> TierStats.Snapshot { counts.snapshot() }
}

extension Atomic where Value == Int {
    func bump(_ n: Int = 1) { add(n, ordering: .relaxed) }
}

/// The swift-metrics handles of one cache stack, made when it is (after the application
/// bootstrapped its backend, if it does).
struct TierMetrics: Sendable {
    let ramHits = Counter(label: "vecgo_tier_hits_total", dimensions: [("tier", "ram")])
    let ramMisses = Counter(label: "vecgo_tier_misses_total", dimensions: [("tier", "ram")])
    let diskHits = Counter(label: "vecgo_tier_hits_total", dimensions: [("tier", "disk")])
    let diskMisses = Counter(label: "vecgo_tier_misses_total", dimensions: [("tier", "disk")])
    let remoteRequests = Counter(label: "vecgo_remote_requests_total")
    let remoteBytes = Counter(label: "vecgo_remote_bytes_total")
    let remoteDuration = Metrics.Timer(label: "vecgo_remote_request_duration_seconds")

    func ram(hit: Bool) { (hit ? ramHits : ramMisses).increment() }
    func disk(hit: Bool) { (hit ? diskHits : diskMisses).increment() }
    func remote(bytes: Int, nanos: UInt64?) {
        remoteRequests.increment()
        remoteBytes.increment(by: bytes)
        if let nanos { remoteDuration.recordNanoseconds(Int64(clamping: nanos)) }
    }
}
