// The BlobStore that reads through the tiers (RAM pages, disk blocks, the remote store) and
// fetches from the remote store only the pages a read is missing.
public import Stores

/// A ``BlobStore`` that serves reads through the tiers: RAM pages (L1), then disk blocks (L2),
/// then the remote store (L3). Objects are immutable, so nothing is ever invalidated; writes,
/// listings, sizes and whole-object reads go straight to the remote store.
///
/// A read is cut into pages of the RAM block size (4 KiB by default). The pages in neither RAM
/// nor the disk cache are fetched from the remote store, and only they: each run of adjacent
/// missing pages is one ranged GET; runs at most `coalesceGapBytes` apart share one GET (the
/// pages between them come along and are cached too); a run above `maxRequestBytes` is split
/// into parts; all the GETs of one read (or of several ranges read together with
/// ``read(_:ranges:)``) are sent at once. Concurrent reads needing the same page share the one
/// GET in flight for it. Every fetched page goes into RAM and, through the disk cache's
/// background queue, into the file of its disk block.
public final class CachingStore: BlobStore {
    /// The store behind the caches.
    public let remote: any BlobStore
    /// The RAM tier; its block size is the page size of every fetch.
    public let ram: BlockCache
    /// The disk tier, when configured.
    public let disk: DiskCache?
    /// Counters of every tier.
    public let stats: TierStats
    /// The largest single ranged GET; longer runs of missing pages are split into parallel parts.
    public let maxRequestBytes: Int
    /// Runs of missing pages separated by at most this many bytes of other pages share one GET.
    public let coalesceGapBytes: Int
    /// Pages of one disk block (or, with no disk cache, of the 4 MiB unit its misses are counted by).
    private let unitPages: UInt64
    /// The GET in flight for each page being fetched.
    private let inflight = Locked<[BlockKey: PageFetch]>([:])

    /// One ranged GET of the pages `first..<first + n`; its value has one entry per page (empty
    /// past the object's end).
    final class PageFetch: Sendable {
        let first: UInt64
        let task: Task<[[UInt8]], any Error>
        init(first: UInt64, task: Task<[[UInt8]], any Error>) {
            self.first = first
            self.task = task
        }
    }

    /// Creates a caching store in front of `remote`.
    ///
    /// - Parameters:
    ///   - remote: the store behind the caches.
    ///   - ram: the RAM tier; its counters are this store's, which the disk cache must share
    ///     (create both with the same ``TierStats``), and its block size must be the disk
    ///     cache's page size.
    ///   - disk: the disk tier, or nil.
    ///   - maxRequestBytes: the largest single GET (8 MiB by default).
    ///   - coalesceGapBytes: missing runs at most this far apart share a GET (64 KiB by default).
    public init(remote: any BlobStore, ram: BlockCache, disk: DiskCache?,
                maxRequestBytes: Int = 8 << 20, coalesceGapBytes: Int = 64 << 10) {
        precondition(disk == nil || disk!.stats === ram.stats, "the RAM and disk caches must share one TierStats")
        precondition(disk == nil || disk!.pageSize == ram.blockSize, "the disk page size must be the RAM block size")
        self.remote = remote
        self.ram = ram
        self.disk = disk
        self.stats = ram.stats
        self.maxRequestBytes = max(maxRequestBytes, ram.blockSize)
        self.coalesceGapBytes = max(0, coalesceGapBytes)
        self.unitPages = UInt64(max(1, (disk?.blockSize ?? 4 << 20) / ram.blockSize))
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        guard range.upperBound != .max else { return try await readWhole(name) }
        guard !range.isEmpty else { return [] }
        // The common warm case: one RAM page, served without building anything.
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
            let pieces = try await fetchPages(name, [b])
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
            pieces.merge(try await fetchPages(name, missing.sorted())) { a, _ in a }
        }
        return ranges.map { Self.assemble($0, pieces, blockSize: ram.blockSize) }
    }

    /// The bytes of `range` from page-sized pieces (a piece shorter than a page ends the object).
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

    /// Gets the pages `pages` (ascending, none in RAM): from the disk cache the pages its block
    /// files hold (one lookup per block), the rest from the remote store. Every page obtained
    /// goes into RAM.
    private func fetchPages(_ name: String, _ pages: [UInt64]) async throws -> [UInt64: [UInt8]] {
        var found: [UInt64: [UInt8]] = [:]
        var absent: [UInt64] = []
        var i = 0
        while i < pages.count {
            let unit = pages[i] / unitPages
            var j = i
            while j < pages.count && pages[j] / unitPages == unit { j += 1 }
            let group = pages[i..<j]
            i = j
            guard let disk else {
                stats.disk(hit: false)
                absent += group
                continue
            }
            let base = unit * unitPages
            let got = disk.get(BlockKey(object: name, index: unit), pages: group.map { Int($0 - base) })
            for p in group {
                if let bytes = got[Int(p - base)] {
                    ram.put(BlockKey(object: name, index: p), bytes)
                    found[p] = bytes
                } else {
                    absent.append(p)
                }
            }
        }
        guard !absent.isEmpty else { return found }
        let (fetches, settled) = startFetches(name, absent)
        found.merge(settled) { a, _ in a }
        for (fetch, wanted) in fetches {
            let got = try await fetch.task.value
            for p in wanted { found[p] = got[Int(p - fetch.first)] }
        }
        return found
    }

    /// Joins or starts the GETs for `pages` (ascending): a page already being fetched joins
    /// that GET; a page another read brought into RAM meanwhile is taken from there; the others
    /// are planned by ``FetchPlan`` and started at once, each page of them (gaps included)
    /// entered in the in-flight table until its GET ends.
    private func startFetches(_ name: String, _ pages: [UInt64])
        -> (fetches: [(PageFetch, [UInt64])], settled: [UInt64: [UInt8]]) {
        let small = UInt64(ram.blockSize)
        let gapPages = UInt64(coalesceGapBytes) / small, maxPages = UInt64(maxRequestBytes) / small
        return inflight.withLock { table in
            var joined: [ObjectIdentifier: (PageFetch, [UInt64])] = [:]
            var settled: [UInt64: [UInt8]] = [:]
            var toFetch: [UInt64] = []
            for p in pages {
                let key = BlockKey(object: name, index: p)
                if let fetch = table[key] {
                    joined[ObjectIdentifier(fetch), default: (fetch, [])].1.append(p)
                } else if let bytes = ram.peek(key) {
                    settled[p] = bytes  // fetched by a read that finished after ours missed RAM
                } else {
                    toFetch.append(p)
                }
            }
            var fetches = Array(joined.values)
            let requests = FetchPlan.requests(toFetch, gapPages: gapPages, maxPages: maxPages) {
                table[BlockKey(object: name, index: $0)] != nil
            }
            var k = 0
            for run in requests {
                let fetch = PageFetch(first: run.lowerBound, task: Task { try await self.fetchRun(name, run) })
                for p in run { table[BlockKey(object: name, index: p)] = fetch }
                var wanted: [UInt64] = []
                while k < toFetch.count && toFetch[k] < run.upperBound {
                    wanted.append(toFetch[k])
                    k += 1
                }
                fetches.append((fetch, wanted))
            }
            return (fetches, settled)
        }
    }

    /// One ranged GET of the pages `run`: counts it, puts every page into RAM and queues the
    /// pages of each disk block it touches for the disk cache, then leaves the in-flight table.
    private func fetchRun(_ name: String, _ run: Range<UInt64>) async throws -> [[UInt8]] {
        defer {
            inflight.withLock { table in
                for p in run { table[BlockKey(object: name, index: p)] = nil }
            }
        }
        let small = ram.blockSize
        let start = ContinuousClock.now
        let bytes = try await remote.read(name, range: run.lowerBound * UInt64(small)..<run.upperBound * UInt64(small))
        stats.remote(bytes: bytes.count, nanos: start.elapsedNanos)
        let endsObject = bytes.count < run.count * small
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(run.count)
        for (i, p) in run.enumerated() {
            let lo = min(i * small, bytes.count), hi = min(lo + small, bytes.count)
            let piece = Array(bytes[lo..<hi])  // empty past the object's end: remembered as such
            ram.put(BlockKey(object: name, index: p), piece)
            pieces.append(piece)
        }
        if let disk {
            var p = run.lowerBound
            while p < run.upperBound {
                let unit = p / unitPages
                let stop = min(run.upperBound, (unit + 1) * unitPages)
                let lo = min(Int(p - run.lowerBound) * small, bytes.count)
                let hi = min(Int(stop - run.lowerBound) * small, bytes.count)
                if lo < hi {
                    disk.enqueue(BlockKey(object: name, index: unit), firstPage: Int(p - unit * unitPages),
                                 Array(bytes[lo..<hi]), endsObject: endsObject && hi == bytes.count)
                }
                p = stop
            }
        }
        return pieces
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
