import Synchronization

/// Counters of one cache stack, updated lock-free; ``snapshot()`` reads them all.
public final class TierStats: Sendable {
    let ramHits = Atomic<Int>(0), ramMisses = Atomic<Int>(0), ramEvictions = Atomic<Int>(0)
    let diskHits = Atomic<Int>(0), diskMisses = Atomic<Int>(0), diskWrites = Atomic<Int>(0)
    let diskCorrupt = Atomic<Int>(0), diskEvictions = Atomic<Int>(0), diskDropped = Atomic<Int>(0)
    let remoteRequests = Atomic<Int>(0), remoteBytes = Atomic<Int>(0)

    public init() {}

    /// The counters at one moment.
    public struct Snapshot: Sendable, Hashable, CustomStringConvertible {
        /// RAM blocks served from memory.
        public var ramHits = 0
        /// RAM blocks not in memory.
        public var ramMisses = 0
        /// RAM blocks evicted to stay under the budget.
        public var ramEvictions = 0
        /// Disk blocks served from the cache directory.
        public var diskHits = 0
        /// Disk blocks not in the cache directory (or not checked: no disk cache).
        public var diskMisses = 0
        /// Disk blocks written.
        public var diskWrites = 0
        /// Disk blocks found damaged, evicted and refetched.
        public var diskCorrupt = 0
        /// Disk blocks evicted to stay under the size limit.
        public var diskEvictions = 0
        /// Disk writes dropped because the write queue was full.
        public var diskDropped = 0
        /// Requests sent to the remote store.
        public var remoteRequests = 0
        /// Bytes received from the remote store.
        public var remoteBytes = 0

        /// All counters zero.
        public init() {}

        init(ramHits: Int, ramMisses: Int, ramEvictions: Int, diskHits: Int, diskMisses: Int, diskWrites: Int,
             diskCorrupt: Int, diskEvictions: Int, diskDropped: Int, remoteRequests: Int, remoteBytes: Int) {
            self.ramHits = ramHits
            self.ramMisses = ramMisses
            self.ramEvictions = ramEvictions
            self.diskHits = diskHits
            self.diskMisses = diskMisses
            self.diskWrites = diskWrites
            self.diskCorrupt = diskCorrupt
            self.diskEvictions = diskEvictions
            self.diskDropped = diskDropped
            self.remoteRequests = remoteRequests
            self.remoteBytes = remoteBytes
        }

        /// The change from `earlier` to this snapshot.
        public func since(_ earlier: Snapshot) -> Snapshot {
            Snapshot(ramHits: ramHits - earlier.ramHits, ramMisses: ramMisses - earlier.ramMisses,
                     ramEvictions: ramEvictions - earlier.ramEvictions, diskHits: diskHits - earlier.diskHits,
                     diskMisses: diskMisses - earlier.diskMisses, diskWrites: diskWrites - earlier.diskWrites,
                     diskCorrupt: diskCorrupt - earlier.diskCorrupt, diskEvictions: diskEvictions - earlier.diskEvictions,
                     diskDropped: diskDropped - earlier.diskDropped, remoteRequests: remoteRequests - earlier.remoteRequests,
                     remoteBytes: remoteBytes - earlier.remoteBytes)
        }

        public var description: String {
            "ram \(ramHits) hits / \(ramMisses) misses, disk \(diskHits) hits / \(diskMisses) misses, remote \(remoteRequests) requests / \(remoteBytes) bytes"
        }
    }

    /// The counters of the query running in this task (and its child tasks), when it asked for
    /// them: every update to a ``TierStats`` is also added there.
    @TaskLocal public static var query: QueryCounters?

    func ram(hit: Bool) {
        countRAM(hit: hit)
        Self.query?.counts.countRAM(hit: hit)
    }

    func disk(hit: Bool) {
        countDisk(hit: hit)
        Self.query?.counts.countDisk(hit: hit)
    }

    func remote(bytes: Int) {
        countRemote(bytes: bytes)
        Self.query?.counts.countRemote(bytes: bytes)
    }

    private func countRAM(hit: Bool) { if hit { ramHits.bump() } else { ramMisses.bump() } }
    private func countDisk(hit: Bool) { if hit { diskHits.bump() } else { diskMisses.bump() } }
    private func countRemote(bytes: Int) {
        remoteRequests.bump()
        remoteBytes.bump(bytes)
    }

    /// Reads every counter.
    public func snapshot() -> Snapshot {
        Snapshot(ramHits: ramHits.load(ordering: .relaxed), ramMisses: ramMisses.load(ordering: .relaxed),
                 ramEvictions: ramEvictions.load(ordering: .relaxed), diskHits: diskHits.load(ordering: .relaxed),
                 diskMisses: diskMisses.load(ordering: .relaxed), diskWrites: diskWrites.load(ordering: .relaxed),
                 diskCorrupt: diskCorrupt.load(ordering: .relaxed), diskEvictions: diskEvictions.load(ordering: .relaxed),
                 diskDropped: diskDropped.load(ordering: .relaxed), remoteRequests: remoteRequests.load(ordering: .relaxed),
                 remoteBytes: remoteBytes.load(ordering: .relaxed))
    }
}

/// Counters of one query: set ``TierStats/query`` to an instance while the query runs, then
/// read ``snapshot()``. Reads shared with a concurrent query are counted by the query that
/// made them.
public final class QueryCounters: Sendable {
    let counts = TierStats()
    public init() {}
    /// The counters so far.
    public func snapshot() -> TierStats.Snapshot { counts.snapshot() }
}

extension Atomic where Value == Int {
    func bump(_ n: Int = 1) { add(n, ordering: .relaxed) }
}
