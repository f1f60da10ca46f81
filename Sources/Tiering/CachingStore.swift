public import Stores

/// A ``BlobStore`` that serves reads through the tiers: RAM blocks (L1), then disk blocks (L2),
/// then the remote store (L3). Objects are immutable, so nothing is ever invalidated; writes,
/// listings and sizes go straight to the remote store.
///
/// Remote reads are made in aligned units of `fetchBlockSize` (the disk block size), so every
/// fetched byte can be cached on disk. The missing units of one read (or of several ranges read
/// together with ``read(_:ranges:)``) become one ranged GET per run of units no more than
/// `coalesceGapBytes` apart, split into parallel parts above `maxRequestBytes`; concurrent reads
/// of the same unit share one in-flight request. A disk hit reads only the pages needed.
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
    /// Missing units separated by at most this many cached bytes are fetched by one GET.
    public let coalesceGapBytes: Int
    private let inflight = Locked<[BlockKey: Task<[UInt8], any Error>]>([:])

    /// Creates a caching store in front of `remote`. Its counters are the RAM cache's, which
    /// the disk cache must share (create both with the same ``TierStats``).
    public init(remote: any BlobStore, ram: BlockCache, disk: DiskCache?,
                fetchBlockSize: Int = 4 << 20, maxRequestBytes: Int = 16 << 20, coalesceGapBytes: Int = 4 << 20) {
        precondition(disk == nil || disk!.stats === ram.stats, "the RAM and disk caches must share one TierStats")
        precondition((disk?.blockSize ?? fetchBlockSize) % ram.blockSize == 0,
                     "the fetch unit must be a multiple of the RAM block size")
        self.remote = remote
        self.ram = ram
        self.disk = disk
        self.stats = ram.stats
        self.fetchBlockSize = disk?.blockSize ?? fetchBlockSize
        self.maxRequestBytes = max(maxRequestBytes, self.fetchBlockSize)
        self.coalesceGapBytes = max(0, coalesceGapBytes)
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        guard range.upperBound != .max else { return try await readWhole(name) }
        guard !range.isEmpty else { return [] }
        // The common warm case: one RAM block, served without building anything.
        let small = UInt64(ram.blockSize)
        let b = range.lowerBound / small
        if (range.upperBound - 1) / small == b {
            let start = ContinuousClock.now
            if let piece = ram.get(BlockKey(object: name, index: b)) {
                let lo = Int(range.lowerBound - b * small), hi = min(Int(range.upperBound - b * small), piece.count)
                let out = lo == 0 && hi == piece.count ? piece : (lo < hi ? Array(piece[lo..<hi]) : [])
                stats.ramRead(nanos: start.elapsedNanos)
                return out
            }
            let pieces = try await fetchBlocks(name, [b])
            return Self.assemble(range, pieces, blockSize: ram.blockSize)
        }
        return try await read(name, ranges: [range])[0]
    }

    public func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]] {
        if ranges.contains(where: { $0.upperBound == .max }) {
            var out: [[UInt8]] = []
            for r in ranges { out.append(try await read(name, range: r)) }
            return out
        }
        let start = ContinuousClock.now
        let small = UInt64(ram.blockSize)
        var pieces: [UInt64: [UInt8]] = [:]
        var missing = Set<UInt64>()
        for r in ranges where !r.isEmpty {
            for b in r.lowerBound / small...(r.upperBound - 1) / small where pieces[b] == nil && !missing.contains(b) {
                if let bytes = ram.get(BlockKey(object: name, index: b)) {
                    pieces[b] = bytes
                } else {
                    missing.insert(b)
                }
            }
        }
        if missing.isEmpty {
            stats.ramRead(nanos: start.elapsedNanos)
        } else {
            pieces.merge(try await fetchBlocks(name, missing.sorted())) { a, _ in a }
        }
        return ranges.map { Self.assemble($0, pieces, blockSize: ram.blockSize) }
    }

    /// The bytes of `range` from RAM-block-sized pieces (a piece shorter than a block ends the object).
    static func assemble(_ range: Range<UInt64>, _ pieces: [UInt64: [UInt8]], blockSize: Int) -> [UInt8] {
        guard !range.isEmpty else { return [] }
        let small = UInt64(blockSize)
        var out: [UInt8] = []
        out.reserveCapacity(Int(range.upperBound - range.lowerBound))
        for b in range.lowerBound / small...(range.upperBound - 1) / small {
            guard let piece = pieces[b] else { break }  // past the object's end
            let start = b * small
            let lo = Int(max(range.lowerBound, start) - start)
            let hi = min(Int(range.upperBound - start), piece.count)
            if lo < hi { out.append(contentsOf: piece[lo..<hi]) }
            if piece.count < blockSize { break }
        }
        return out
    }

    /// Whole-object reads have no known end: they go to the remote store once and are not cached.
    private func readWhole(_ name: String) async throws -> [UInt8] {
        let start = ContinuousClock.now
        let bytes = try await remote.read(name)
        stats.remote(bytes: bytes.count, nanos: start.elapsedNanos)
        return bytes
    }

    /// Gets the RAM blocks `blocks` (sorted, none in RAM): each unit's needed span from disk
    /// when it is there (only those pages), else whole units from the remote store. Every
    /// block obtained goes into RAM; remote units also go to disk.
    private func fetchBlocks(_ name: String, _ blocks: [UInt64]) async throws -> [UInt64: [UInt8]] {
        let perUnit = UInt64(fetchBlockSize / ram.blockSize)
        let small = ram.blockSize
        var found: [UInt64: [UInt8]] = [:]
        var remoteUnits: [UInt64] = []
        var i = 0
        while i < blocks.count {
            let unit = blocks[i] / perUnit
            var j = i
            while j + 1 < blocks.count && blocks[j + 1] / perUnit == unit { j += 1 }
            let first = blocks[i], last = blocks[j]
            i = j + 1
            guard let disk else {
                stats.disk(hit: false)
                remoteUnits.append(unit)
                continue
            }
            let lo = Int(first - unit * perUnit) * small, hi = Int(last - unit * perUnit + 1) * small
            guard let bytes = disk.get(BlockKey(object: name, index: unit), range: lo..<hi) else {
                remoteUnits.append(unit)
                continue
            }
            var offset = 0, b = first
            while offset < bytes.count {
                let piece = Array(bytes[offset..<min(offset + small, bytes.count)])
                ram.put(BlockKey(object: name, index: b), piece)
                found[b] = piece
                offset += small
                b += 1
            }
        }
        guard !remoteUnits.isEmpty else { return found }
        for (unit, task) in startFetches(name, remoteUnits) {
            let bytes = try await task.value
            // Fill L1 with every small block of the unit, so neighbouring reads hit RAM.
            var offset = 0, b = unit * perUnit
            while offset < bytes.count {
                let piece = Array(bytes[offset..<min(offset + small, bytes.count)])
                ram.put(BlockKey(object: name, index: b), piece)
                if found[b] == nil { found[b] = piece }
                offset += small
                b += 1
            }
        }
        return found
    }

    /// Returns one task per unit: an in-flight one when another reader already asked for that
    /// unit, else a new ranged GET shared by each run of units at most `coalesceGapBytes`
    /// apart (the units of the gap are fetched too, and cached).
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
                    let start = ContinuousClock.now
                    let bytes = try await remote.read(name, range: lo * unitSize..<(lo + UInt64(count)) * unitSize)
                    stats.remote(bytes: bytes.count, nanos: start.elapsedNanos)
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
            let gapUnits = UInt64(coalesceGapBytes / fetchBlockSize)
            for u in units {
                let key = BlockKey(object: name, index: u)
                if let existing = table[key] {
                    flush()
                    result.append((u, existing))
                    continue
                }
                if let prev = run.last {
                    if u - prev - 1 > gapUnits || run.count + Int(u - prev) > maxUnits
                        || (prev + 1..<u).contains(where: { table[BlockKey(object: name, index: $0)] != nil }) {
                        flush()
                    } else {
                        run.append(contentsOf: prev + 1..<u)  // the gap rides along
                    }
                }
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
