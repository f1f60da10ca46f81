// The byte budget for decoded segment parts (graphs, flat rows, metadata) a handle keeps warm.
import Stores

/// Decoded segment parts kept in memory for warm queries — graphs with their vectors, flat
/// rows, metadata — under one byte budget per handle. The least recently used part is dropped
/// when a new one would exceed the budget; a dropped part is decoded again from the block
/// cache when next needed. A part larger than the whole budget is used once and not kept.
final class DecodedBudget: Sendable {
    private struct Entry {
        var bytes: Int
        var lastUse: UInt64
        let drop: @Sendable () -> Void
    }

    /// The budget in bytes.
    let capacity: Int
    private let state = Locked<(entries: [String: Entry], total: Int, tick: UInt64)>(([:], 0, 0))

    init(capacity: Int) { self.capacity = capacity }

    /// Bytes of decoded parts kept now.
    var bytes: Int { state.withLock { $0.total } }

    /// Keeps a newly decoded part of `bytes` under `key`; `drop` forgets it. Drops the least
    /// recently used others until everything fits. Returns false (and keeps nothing) when the
    /// part alone exceeds the budget: the caller should forget it after this use.
    func admit(_ key: String, bytes: Int, drop: @escaping @Sendable () -> Void) -> Bool {
        guard bytes <= capacity else { return false }
        let dropped = state.withLock { s -> [@Sendable () -> Void] in
            s.tick += 1
            var out: [@Sendable () -> Void] = []
            if let old = s.entries.removeValue(forKey: key) {  // another reader's copy of the same part
                s.total -= old.bytes
                out.append(old.drop)
            }
            while s.total + bytes > capacity, let victim = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.entries.removeValue(forKey: victim.key)
                s.total -= victim.value.bytes
                out.append(victim.value.drop)
            }
            s.entries[key] = Entry(bytes: bytes, lastUse: s.tick, drop: drop)
            s.total += bytes
            return out
        }
        for d in dropped { d() }  // outside the lock: a drop takes the segment's own lock
        return true
    }

    /// Drops the parts of `segments` (parts are kept under `<segment name>#<kind>`): a handle
    /// whose version no longer has a segment never uses its parts again, so they must not wait
    /// for the least recently used rule to go. Returns how many parts were dropped.
    @discardableResult
    func evict(segments: Set<String>) -> Int {
        guard !segments.isEmpty else { return 0 }
        let dropped = state.withLock { s -> [@Sendable () -> Void] in
            var out: [@Sendable () -> Void] = []
            for (key, entry) in s.entries {
                guard let hash = key.lastIndex(of: "#"), segments.contains(String(key[..<hash])) else { continue }
                s.entries.removeValue(forKey: key)
                s.total -= entry.bytes
                out.append(entry.drop)
            }
            return out
        }
        for d in dropped { d() }
        return dropped.count
    }

    /// How many parts are kept now.
    var count: Int { state.withLock { $0.entries.count } }

    /// Marks `key` as just used.
    func touch(_ key: String) {
        state.withLock { s in
            s.tick += 1
            s.entries[key]?.lastUse = s.tick
        }
    }
}
