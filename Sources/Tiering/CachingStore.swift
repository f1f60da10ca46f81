public import Stores

/// A ``BlobStore`` that serves reads through the tiers: RAM blocks (L1), then disk blocks (L2),
/// then the remote store (L3). Objects are immutable, so nothing is ever invalidated; writes,
/// listings and sizes go straight to the remote store.
///
/// Remote reads are made in aligned units of `fetchBlockSize` (the disk block size), so every
/// fetched byte can be cached on disk. Consecutive missing units of one read become one ranged
/// GET (split into parallel parts above `maxRequestBytes`), and concurrent reads of the same
/// unit share one in-flight request.
public final class CachingStore: BlobStore {
    /// The store behind the caches.
    public let remote: any BlobStore
    /// The RAM tier.
    public let ram: BlockCache
    /// The disk tier, when configured.
    public let disk: DiskCache?
    /// Counters of every tier.
    public let stats: TierStats
    /// The remote fetch unit (and disk block) in bytes.
    public let fetchBlockSize: Int
    /// The largest single ranged GET; larger runs are split into parallel parts.
    public let maxRequestBytes: Int
    private let inflight = Locked<[BlockKey: Task<[UInt8], any Error>]>([:])

    /// Creates a caching store in front of `remote`. Its counters are the RAM cache's, which
    /// the disk cache must share (create both with the same ``TierStats``).
    public init(remote: any BlobStore, ram: BlockCache, disk: DiskCache?,
                fetchBlockSize: Int = 4 << 20, maxRequestBytes: Int = 16 << 20) {
        precondition(disk == nil || disk!.stats === ram.stats, "the RAM and disk caches must share one TierStats")
        precondition((disk?.blockSize ?? fetchBlockSize) % ram.blockSize == 0,
                     "the fetch unit must be a multiple of the RAM block size")
        self.remote = remote
        self.ram = ram
        self.disk = disk
        self.stats = ram.stats
        self.fetchBlockSize = disk?.blockSize ?? fetchBlockSize
        self.maxRequestBytes = max(maxRequestBytes, self.fetchBlockSize)
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        guard range.upperBound != .max else { return try await readWhole(name) }
        guard !range.isEmpty else { return [] }
        let small = UInt64(ram.blockSize)
        let first = range.lowerBound / small, last = (range.upperBound - 1) / small
        var pieces: [UInt64: [UInt8]] = [:]
        var missingUnits: [UInt64] = []
        let perUnit = UInt64(fetchBlockSize / ram.blockSize)
        for b in first...last {
            if let bytes = ram.get(BlockKey(object: name, index: b)) {
                pieces[b] = bytes
            } else if missingUnits.last != b / perUnit {
                missingUnits.append(b / perUnit)
            }
        }
        if !missingUnits.isEmpty {
            let units = try await fetchUnits(name, missingUnits)
            for (unit, bytes) in units {
                // Fill L1 with every small block of the unit, so neighbouring reads hit RAM.
                var offset = 0
                var b = unit * perUnit
                while offset < bytes.count {
                    let piece = Array(bytes[offset..<min(offset + ram.blockSize, bytes.count)])
                    ram.put(BlockKey(object: name, index: b), piece)
                    if b >= first && b <= last { pieces[b] = piece }
                    offset += ram.blockSize
                    b += 1
                }
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(range.upperBound - range.lowerBound))
        for b in first...last {
            guard let piece = pieces[b] else { break }  // past the object's end
            let start = b * small
            let lo = Int(max(range.lowerBound, start) - start)
            let hi = min(Int(range.upperBound - start), piece.count)
            if lo < hi { out.append(contentsOf: piece[lo..<hi]) }
            if piece.count < ram.blockSize { break }
        }
        return out
    }

    /// Whole-object reads have no known end: they go to the remote store once and are not cached.
    private func readWhole(_ name: String) async throws -> [UInt8] {
        let bytes = try await remote.read(name)
        stats.remote(bytes: bytes.count)
        return bytes
    }

    /// Gets fetch units from disk or the remote store.
    private func fetchUnits(_ name: String, _ units: [UInt64]) async throws -> [(UInt64, [UInt8])] {
        var found: [(UInt64, [UInt8])] = []
        var remoteUnits: [UInt64] = []
        for u in units {
            if let disk {
                if let bytes = disk.get(BlockKey(object: name, index: u)) {
                    found.append((u, bytes))
                    continue
                }
            } else {
                stats.disk(hit: false)
            }
            remoteUnits.append(u)
        }
        guard !remoteUnits.isEmpty else { return found }
        let tasks = startFetches(name, remoteUnits)
        for (u, task) in tasks {
            found.append((u, try await task.value))
        }
        return found
    }

    /// Returns one task per unit: an in-flight one when another reader already asked for that
    /// unit, else a new ranged GET shared by each run of consecutive units.
    private func startFetches(_ name: String, _ units: [UInt64]) -> [(UInt64, Task<[UInt8], any Error>)] {
        inflight.withLock { table in
            var result: [(UInt64, Task<[UInt8], any Error>)] = []
            var run: [UInt64] = []
            let maxUnits = max(1, maxRequestBytes / fetchBlockSize)
            func flush() {
                guard let lo = run.first else { return }
                let count = run.count
                let unitSize = UInt64(fetchBlockSize)
                let fetch = Task<[UInt8], any Error> { [remote, stats] in
                    let bytes = try await remote.read(name, range: lo * unitSize..<(lo + UInt64(count)) * unitSize)
                    stats.remote(bytes: bytes.count)
                    return bytes
                }
                for (i, u) in run.enumerated() {
                    let key = BlockKey(object: name, index: u)
                    let one = Task<[UInt8], any Error> { [disk, inflight] in
                        defer { _ = inflight.withLock { $0.removeValue(forKey: key) } }
                        let all = try await fetch.value
                        let start = min(i * fetchBlockSize, all.count)
                        let bytes = Array(all[start..<min(start + fetchBlockSize, all.count)])
                        if !bytes.isEmpty { disk?.enqueue(key, bytes) }
                        return bytes
                    }
                    table[key] = one
                    result.append((u, one))
                }
                run.removeAll()
            }
            for u in units {
                let key = BlockKey(object: name, index: u)
                if let existing = table[key] {
                    flush()
                    result.append((u, existing))
                    continue
                }
                if let prev = run.last, prev + 1 != u || run.count == maxUnits { flush() }
                run.append(u)
            }
            flush()
            return result
        }
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws { try await remote.put(name, bytes) }
    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws { try await remote.putIfAbsent(name, bytes) }
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        let listing = try await remote.list(prefix: prefix, startAfter: startAfter)
        stats.remote(bytes: 0)
        return listing
    }
    public func delete(_ name: String) async throws { try await remote.delete(name) }
    public func size(_ name: String) async throws -> UInt64 { try await remote.size(name) }
}
