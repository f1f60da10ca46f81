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

    /// Marks `key` as just used.
    func touch(_ key: String) {
        state.withLock { s in
            s.tick += 1
            s.entries[key]?.lastUse = s.tick
        }
    }
}
