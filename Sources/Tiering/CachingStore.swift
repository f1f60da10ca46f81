// The BlobStore that reads through the tiers (RAM pages, disk blocks, the remote store) and
// fetches from the remote store only the pages a read is missing; and heals: a read whose bytes
// fail their check is dropped from every tier and read once more straight from the store.
public import Logging
public import Stores

/// A ``BlobStore`` that serves reads through the tiers: RAM pages (L1), then disk blocks (L2),
/// then the remote store (L3). Objects are immutable; bytes are dropped from the tiers only when
/// they fail a check (see ``readChecked(_:ranges:_:)``). Writes, listings, sizes and
/// whole-object reads go straight to the remote store.
///
/// A read is cut into pages of the RAM block size (4 KiB by default). The pages in neither RAM
/// nor the disk cache are fetched from the remote store, and only they: each run of adjacent
/// missing pages is one ranged GET; runs at most `coalesceGapBytes` apart share one GET (the
/// pages between them come along and are cached too); a run above `maxRequestBytes` is split
/// into parts; all the GETs of one read (or of several ranges read together with
/// ``read(_:ranges:)``) are sent at once. Concurrent reads needing the same page share the one
/// GET in flight for it. Every fetched page goes into RAM and, through the disk cache's
/// background queue, into the file of its disk block.
///
/// Healing: ``readChecked(_:ranges:_:)`` reads through the tiers and runs the caller's check
/// (a checksum, a decode); when the check fails, ``invalidate(_:range:)`` drops the pages from
/// RAM, from the disk cache (queued pages and block files) and from the in-flight table, and
/// the ranges are read once more from the remote store, bypassing the tiers; only bytes that
/// pass the check then go back into them. A GET that was in flight when its object was
/// invalidated still answers its waiters (who check what they get) but keeps nothing.
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
    /// Where warnings go: bytes evicted because they failed a check (object and range).
    public let logger: Logger
    /// The GETs in flight and how often each object was invalidated, under one lock: bytes
    /// enter the tiers under it, only when their object was not invalidated since they were asked for.
    private let shared = Locked<Shared>(Shared())

    struct Shared {
        /// The GET in flight for each page being fetched.
        var inflight: [BlockKey: PageFetch] = [:]
        /// Invalidations per object (absent: none).
        var generation: [String: UInt64] = [:]
        var nextFetch: UInt64 = 0
    }

    /// One ranged GET of the pages `first..<first + n`; its value has one entry per page (empty
    /// past the object's end).
    final class PageFetch: Sendable {
        let id: UInt64
        let first: UInt64
        let task: Task<[[UInt8]], any Error>
        init(id: UInt64, first: UInt64, task: Task<[[UInt8]], any Error>) {
            self.id = id
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
    ///   - logger: where warnings go (silent by default).
    public init(remote: any BlobStore, ram: BlockCache, disk: DiskCache?,
                maxRequestBytes: Int = 8 << 20, coalesceGapBytes: Int = 64 << 10,
                logger: Logger = .silent) {
        precondition(disk == nil || disk!.stats === ram.stats, "the RAM and disk caches must share one TierStats")
        precondition(disk == nil || disk!.pageSize == ram.blockSize, "the disk page size must be the RAM block size")
        self.remote = remote
        self.ram = ram
        self.disk = disk
        self.stats = ram.stats
        self.maxRequestBytes = max(maxRequestBytes, ram.blockSize)
        self.coalesceGapBytes = max(0, coalesceGapBytes)
        self.unitPages = UInt64(max(1, (disk?.blockSize ?? 4 << 20) / ram.blockSize))
        self.logger = logger
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
        let asked = generation(of: name)
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
                    found[p] = bytes
                } else {
                    absent.append(p)
                }
            }
        }
        if !found.isEmpty {
            shared.withLock { s in
                guard s.generation[name] == asked else { return }  // invalidated meanwhile: keep nothing
                for (p, bytes) in found { ram.put(BlockKey(object: name, index: p), bytes) }
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
        return shared.withLock { s in
            var joined: [ObjectIdentifier: (PageFetch, [UInt64])] = [:]
            var settled: [UInt64: [UInt8]] = [:]
            var toFetch: [UInt64] = []
            for p in pages {
                let key = BlockKey(object: name, index: p)
                if let fetch = s.inflight[key] {
                    joined[ObjectIdentifier(fetch), default: (fetch, [])].1.append(p)
                } else if let bytes = ram.peek(key) {
                    settled[p] = bytes  // fetched by a read that finished after ours missed RAM
                } else {
                    toFetch.append(p)
                }
            }
            var fetches = Array(joined.values)
            let requests = FetchPlan.requests(toFetch, gapPages: gapPages, maxPages: maxPages) {
                s.inflight[BlockKey(object: name, index: $0)] != nil
            }
            let asked = s.generation[name]
            var k = 0
            for run in requests {
                let id = s.nextFetch
                s.nextFetch += 1
                let fetch = PageFetch(id: id, first: run.lowerBound, task: Task { try await self.fetchRun(name, run, id: id, asked: asked) })
                for p in run { s.inflight[BlockKey(object: name, index: p)] = fetch }
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

    /// One ranged GET of the pages `run` (fetch `id`, asked for when its object had been
    /// invalidated `asked` times): its pages go into the tiers unless the object was invalidated
    /// since; then it leaves the in-flight table (its own entries only).
    private func fetchRun(_ name: String, _ run: Range<UInt64>, id: UInt64, asked: UInt64?) async throws -> [[UInt8]] {
        defer {
            shared.withLock { s in
                for p in run where s.inflight[BlockKey(object: name, index: p)]?.id == id {
                    s.inflight[BlockKey(object: name, index: p)] = nil
                }
            }
        }
        let bytes = try await getRun(name, run)
        return keep(name, run, bytes, asked: asked)
    }

    /// One ranged GET of the pages `run` from the remote store, counted.
    private func getRun(_ name: String, _ run: Range<UInt64>) async throws -> [UInt8] {
        let small = UInt64(ram.blockSize)
        let start = ContinuousClock.now
        let bytes = try await remote.read(name, range: run.lowerBound * small..<run.upperBound * small)
        stats.remote(bytes: bytes.count, nanos: start.elapsedNanos)
        return bytes
    }

    /// Cuts the bytes of the pages `run` into pages and, unless `name` was invalidated since it
    /// had been `asked` times, puts every page into RAM and queues the pages of each disk block
    /// it touches for the disk cache (under the lock ``invalidate(_:range:)`` takes, so
    /// nothing invalidated is put back).
    private func keep(_ name: String, _ run: Range<UInt64>, _ bytes: [UInt8], asked: UInt64?) -> [[UInt8]] {
        let small = ram.blockSize
        let endsObject = bytes.count < run.count * small
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(run.count)
        for i in 0..<run.count {
            let lo = min(i * small, bytes.count), hi = min(lo + small, bytes.count)
            pieces.append(Array(bytes[lo..<hi]))  // empty past the object's end: remembered as such
        }
        shared.withLock { s in
            guard s.generation[name] == asked else { return }
            for (i, p) in run.enumerated() { ram.put(BlockKey(object: name, index: p), pieces[i]) }
            guard let disk else { return }
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

    private func generation(of name: String) -> UInt64? { shared.withLock { $0.generation[name] } }

    // MARK: healing

    /// Drops the bytes of `range` of `name` from every tier: its RAM pages, the disk blocks
    /// holding them (queued pages and files) and the in-flight GETs of those pages, which
    /// still answer their waiters but keep nothing. The next read of them goes to the store.
    ///
    /// - Parameters:
    ///   - name: the object.
    ///   - range: the bytes to drop (whole pages and disk blocks around them go); an unbounded
    ///     range is never cached, so nothing is dropped for it.
    public func invalidate(_ name: String, range: Range<UInt64>) {
        guard !range.isEmpty, range.upperBound != .max else { return }
        let small = UInt64(ram.blockSize)
        let pages = range.lowerBound / small...(range.upperBound - 1) / small
        shared.withLock { s in
            s.generation[name, default: 0] += 1
            for p in pages {
                let key = BlockKey(object: name, index: p)
                s.inflight[key] = nil
                ram.remove(key)
            }
        }
        guard let disk else { return }
        for unit in pages.lowerBound / unitPages...pages.upperBound / unitPages {
            disk.invalidate(BlockKey(object: name, index: unit))
        }
    }

    /// Reads `ranges` of `name` through the tiers and returns what `check` makes of them; when
    /// `check` throws (a checksum or a decode failed), the ranges are dropped from every tier
    /// (``invalidate(_:range:)``, logged as a warning) and read once more straight from the
    /// remote store; only when those bytes fail `check` too is its error thrown. Bytes that
    /// pass go back into the tiers.
    ///
    /// - Parameters:
    ///   - name: the object.
    ///   - ranges: the byte ranges `check` is given, in this order (an unbounded range reads
    ///     the whole object, uncached, and is read again as a whole).
    ///   - check: verifies and decodes the bytes; it must throw for damaged bytes. Errors of
    ///     the reads themselves (the store's) are not retried here.
    /// - Returns: what `check` returned.
    /// - Throws: the store's errors, or `check`'s error on the bytes read from the store.
    public func readChecked<T: Sendable>(_ name: String, ranges: [Range<UInt64>],
                                         _ check: @Sendable ([[UInt8]]) throws -> T) async throws -> T {
        let cachedBytes = try await read(name, ranges: ranges)
        let firstError: any Error
        do { return try check(cachedBytes) } catch { firstError = error }
        logger.warning("bytes failed their check; evicted from the caches, reading them again from the store",
                       metadata: ["object": "\(name)", "ranges": "\(ranges)", "error": "\(firstError)"])
        stats.healed.bump()
        if ranges.contains(where: { $0.upperBound == .max }) {
            var again: [[UInt8]] = []
            for r in ranges { again.append(r.upperBound == .max ? try await readWhole(name) : try await remote.read(name, range: r)) }
            return try check(again)
        }
        for r in ranges { invalidate(name, range: r) }
        let asked = generation(of: name)
        let small = UInt64(ram.blockSize)
        var pages = Set<UInt64>()
        for r in ranges where !r.isEmpty { pages.formUnion(r.lowerBound / small...(r.upperBound - 1) / small) }
        let runs = FetchPlan.requests(pages.sorted(), gapPages: UInt64(coalesceGapBytes) / small,
                                      maxPages: UInt64(maxRequestBytes) / small) { _ in false }
        let fetched = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (i, run) in runs.enumerated() { group.addTask { (i, try await self.getRun(name, run)) } }
            var out = [[UInt8]](repeating: [], count: runs.count)
            for try await (i, bytes) in group { out[i] = bytes }
            return out
        }
        var pieces: [UInt64: [UInt8]] = [:]
        for (run, bytes) in zip(runs, fetched) {
            for (i, p) in run.enumerated() {
                let lo = min(i * Int(small), bytes.count), hi = min(lo + Int(small), bytes.count)
                pieces[p] = Array(bytes[lo..<hi])
            }
        }
        let value = try check(ranges.map { Self.assemble($0, pieces, blockSize: ram.blockSize) })
        for (run, bytes) in zip(runs, fetched) { _ = keep(name, run, bytes, asked: asked) }
        return value
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

extension Logger {
    /// A logger that drops everything: the default of every component taking a logger.
    public static var silent: Logger { Logger(label: "vecgo", factory: { _ in SwiftLogNoOpLogHandler() }) }
}
