// The L1 RAM tier: a sharded LRU of small blocks under a byte budget, and the key naming a block.
import Stores

/// Identifies one fixed-size block of one object.
public struct BlockKey: Hashable, Sendable {
    /// The object's name.
    public var object: String
    /// The block's index (offset / block size).
    public var index: UInt64
    public init(object: String, index: UInt64) {
        self.object = object
        self.index = index
    }
}

/// The L1 tier: a sharded LRU of small blocks under a byte budget. Hits and inserts are O(1);
/// a hit allocates nothing (it returns a reference to the stored bytes).
public final class BlockCache: Sendable {
    /// The size of one block in bytes.
    public let blockSize: Int
    /// The byte budget over all shards.
    public let capacityBytes: Int
    private let shards: [Locked<LRUShard>]
    /// The counters this cache updates.
    public let stats: TierStats

    /// Creates a cache of `capacityBytes` in blocks of `blockSize` bytes, split in `shards` locks.
    package init(capacityBytes: Int, blockSize: Int = 4096, shards: Int = 16, stats: TierStats = TierStats()) {
        self.blockSize = blockSize
        self.capacityBytes = capacityBytes
        self.stats = stats
        let per = max(capacityBytes / shards, 0)
        self.shards = (0..<shards).map { _ in Locked(LRUShard(capacity: per)) }
    }

    private func shard(_ key: BlockKey) -> Int {
        var h = Hasher()
        h.combine(key)
        return Int(UInt(bitPattern: h.finalize()) % UInt(shards.count))
    }

    /// The cached bytes of a block, or nil (counted as a hit or a miss).
    public func get(_ key: BlockKey) -> [UInt8]? {
        let v = shards[shard(key)].withLock { $0.get(key) }
        stats.ram(hit: v != nil, bytes: v?.count ?? 0)
        return v
    }

    /// The cached bytes of a block, without counting a hit or a miss or refreshing its place
    /// in the LRU order.
    func peek(_ key: BlockKey) -> [UInt8]? {
        shards[shard(key)].withLock { $0.peek(key) }
    }

    /// Stores a block, evicting the least recently used ones of its shard to stay in budget.
    public func put(_ key: BlockKey, _ bytes: [UInt8]) {
        let evicted = shards[shard(key)].withLock { $0.put(key, bytes) }
        if evicted > 0 { stats.ramEvictions.bump(evicted) }
    }

    /// Drops a block (nothing happens when it is not held).
    public func remove(_ key: BlockKey) {
        shards[shard(key)].withLock { $0.remove(key) }
    }

    /// Bytes held now.
    public var bytesUsed: Int { shards.reduce(0) { acc, s in acc + s.withLock { $0.used } } }
}

/// One LRU shard: a dictionary into an intrusive doubly linked list kept in arrays.
struct LRUShard {
    private var index: [BlockKey: Int] = [:]
    private var keys: [BlockKey] = []
    private var values: [[UInt8]] = []
    private var prev: [Int] = [], next: [Int] = []
    private var free: [Int] = []
    private var head = -1, tail = -1  // head = most recent
    private(set) var used = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func get(_ key: BlockKey) -> [UInt8]? {
        guard let i = index[key] else { return nil }
        moveToFront(i)
        return values[i]
    }

    func peek(_ key: BlockKey) -> [UInt8]? {
        index[key].map { values[$0] }
    }

    /// Inserts or replaces; returns how many entries were evicted.
    mutating func put(_ key: BlockKey, _ bytes: [UInt8]) -> Int {
        guard bytes.count <= capacity else { return 0 }
        if let i = index[key] {
            used += bytes.count - values[i].count
            values[i] = bytes
            moveToFront(i)
        } else {
            let i: Int
            if let f = free.popLast() {
                i = f
                keys[i] = key; values[i] = bytes
            } else {
                i = keys.count
                keys.append(key); values.append(bytes); prev.append(-1); next.append(-1)
            }
            index[key] = i
            used += bytes.count
            link(i)
        }
        var evicted = 0
        while used > capacity, tail >= 0 {
            let t = tail
            unlink(t)
            used -= values[t].count
            index[keys[t]] = nil
            values[t] = []
            free.append(t)
            evicted += 1
        }
        return evicted
    }

    mutating func remove(_ key: BlockKey) {
        guard let i = index.removeValue(forKey: key) else { return }
        unlink(i)
        used -= values[i].count
        values[i] = []
        free.append(i)
    }

    private mutating func link(_ i: Int) {
        prev[i] = -1
        next[i] = head
        if head >= 0 { prev[head] = i }
        head = i
        if tail < 0 { tail = i }
    }

    private mutating func unlink(_ i: Int) {
        if prev[i] >= 0 { next[prev[i]] = next[i] } else { head = next[i] }
        if next[i] >= 0 { prev[next[i]] = prev[i] } else { tail = prev[i] }
    }

    private mutating func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        link(i)
    }
}
