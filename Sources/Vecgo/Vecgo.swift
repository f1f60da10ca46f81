public import IndexCore
public import SegmentFormat
import Stores
public import Tiering
import Foundation

/// One search hit.
public struct SearchResult: Sendable, Hashable {
    /// The row's primary key.
    public var id: UInt64
    /// Distance to the query under the database's metric; smaller is closer.
    public var distance: Float
}

/// Counters of the cache tiers (RAM, disk, remote).
public typealias TierCounters = TierStats.Snapshot

/// What one search cost.
public struct QueryStats: Sendable, Hashable {
    /// Blocks and requests of this query alone, per tier.
    public var tiers: TierCounters
    /// Wall-clock time of the search in microseconds.
    public var latencyMicros: Double
}

/// A Vecgo database handle: a writer, or a stateless read-only reader, of one prefix of an
/// object store.
///
/// Writes go to an in-memory table that searches see at once; ``commit()`` writes them as an
/// immutable segment plus a primary-key checkpoint and then creates the next manifest with a
/// create-if-absent put, the commit point. ``close()`` commits what is pending.
public actor Vecgo {
    /// Floats per vector.
    public nonisolated let dimension: Int
    /// The distance metric.
    public nonisolated let metric: Metric
    /// Whether mutating calls are refused.
    public nonisolated let isReadOnly: Bool

    private let remote: any BlobStore
    private let cached: CachingStore
    private let writerID: String
    private var manifest: Manifest?
    private var segments: [SegmentReader] = []
    private var memtable: Memtable
    private var nextID: UInt64
    private var segmentSequence = 0
    private var closed = false
    private let ivfThreshold: Int

    /// Opens or creates a database.
    ///
    /// - Parameters:
    ///   - backend: where the database lives.
    ///   - options: ``OpenOption``s; a reader needs none (dimension and metric come from the manifest).
    /// - Throws: ``VecgoError``: `.notFound` when there is no database and no `.create`,
    ///   `.invalidArgument` for bad options or a dimension/metric that differs from the stored one.
    public static func open(_ backend: Backend, _ options: OpenOption...) async throws -> Vecgo {
        try await open(backend, options: options)
    }

    /// Opens or creates a database with an array of options.
    public static func open(_ backend: Backend, options: [OpenOption]) async throws -> Vecgo {
        let config = try Configuration(options)
        let remote: any BlobStore
        switch backend {
        case .remote(let s): remote = s
        case .directory(let path):
            do { remote = try LocalDirectoryStore(root: path) } catch { throw VecgoError.wrap(error, "opening \(path)") }
        }
        let stats = TierStats()
        let disk: DiskCache?
        if let dir = config.cacheDirectory {
            do { disk = try DiskCache(directory: dir, capacityBytes: config.diskCacheSize, stats: stats) } catch {
                throw VecgoError(.invalidArgument, "cannot use cache directory '\(dir)': \(error)")
            }
        } else {
            disk = nil
        }
        let cached = CachingStore(remote: remote, ram: BlockCache(capacityBytes: config.blockCacheSize, stats: stats),
                                  disk: disk)
        let manifest: Manifest?
        do { manifest = try await latestManifest(cached) } catch { throw VecgoError.wrap(error, "opening the database") }
        let dimension: Int, metric: Metric
        if let manifest {
            guard let m = Metric(rawValue: manifest.metric) else {
                throw VecgoError(.unsupportedFormat, "manifest version \(manifest.version) has unknown metric code \(manifest.metric)")
            }
            if let create = config.create, create.dimension != manifest.dimension || create.metric != m {
                throw VecgoError(.invalidArgument, "a database with dimension \(manifest.dimension) and metric \(m) already exists here; asked to create dimension \(create.dimension), metric \(create.metric)")
            }
            dimension = manifest.dimension
            metric = m
        } else if let create = config.create {
            dimension = create.dimension
            metric = create.metric
        } else {
            throw VecgoError(.notFound, "no database found (no MANIFEST-*.bin objects); open with .create(dimension:metric:) to create one")
        }
        return Vecgo(remote: remote, cached: cached, manifest: manifest, dimension: dimension, metric: metric,
                     readOnly: config.readOnly, ivfThreshold: config.ivfThreshold)
    }

    private init(remote: any BlobStore, cached: CachingStore, manifest: Manifest?, dimension: Int, metric: Metric,
                 readOnly: Bool, ivfThreshold: Int) {
        self.remote = remote
        self.cached = cached
        self.manifest = manifest
        self.dimension = dimension
        self.metric = metric
        self.isReadOnly = readOnly
        self.memtable = Memtable(dimension: dimension, metric: metric)
        self.ivfThreshold = ivfThreshold
        self.nextID = manifest?.nextID ?? 1
        self.writerID = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.segments = manifest?.segments.map { SegmentReader(ref: $0, store: cached, metric: metric) } ?? []
        Self.prefetchTails(segments)
    }

    /// Starts reading every segment's tail (footer, IVF centroids) in parallel without waiting:
    /// open stays at two round trips, and the first query finds the tails read or in flight.
    private static func prefetchTails(_ segments: [SegmentReader]) {
        guard !segments.isEmpty else { return }
        Task.detached(priority: .userInitiated) {
            await withTaskGroup(of: Void.self) { group in
                for s in segments { group.addTask { _ = try? await s.tail() } }
            }
        }
    }

    /// Finds the newest manifest: one LIST of `MANIFEST-` names, then one read of the last.
    static func latestManifest(_ store: any BlobStore) async throws -> Manifest? {
        let listing = try await store.list(prefix: "MANIFEST-")
        guard let newest = listing.last(where: { Manifest.version(fromObjectName: $0.name) != nil }) else { return nil }
        let bytes = try await store.read(newest.name, range: 0..<newest.size)
        return try Manifest.decode(bytes, object: newest.name)
    }

    // MARK: writes

    /// Adds a vector; it is searchable at once and durable after the next ``commit()``.
    ///
    /// - Returns: the generated primary key.
    /// - Throws: ``VecgoError``: `.readOnly`, `.closed`, `.dimensionMismatch`, `.invalidArgument` for NaN or infinity.
    @discardableResult
    public func insert(_ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) throws -> UInt64 {
        try checkWritable()
        try validate(vector, what: "vector")
        let id = nextID
        nextID += 1
        memtable.append(id: id, vector: metric == .cosine ? Distance.normalized(vector) : vector,
                        metadata: metadata, payload: payload ?? [])
        return id
    }

    /// Rows inserted and not yet committed.
    public var pendingCount: Int { memtable.count }

    /// The committed version this handle sees (0 before the first commit).
    public var version: UInt64 { manifest?.version ?? 0 }

    /// Makes every pending write durable as one new version.
    ///
    /// Objects are written first (a segment and a primary-key checkpoint, under names unique to
    /// this writer); then `MANIFEST-<version+1>.bin` is created only if absent. If another
    /// writer took that version, nothing is lost: the pending rows stay in this handle and the
    /// call throws `.conflict` (merging concurrent writers is not done yet).
    ///
    /// - Returns: the version now committed (unchanged when nothing was pending).
    @discardableResult
    public func commit() async throws -> UInt64 {
        try checkWritable()
        guard !memtable.isEmpty else { return version }
        let base = manifest
        let newVersion = (base?.version ?? 0) + 1
        do {
            segmentSequence += 1
            let contents = memtable.contents(SegmentLayout.choose(rows: memtable.count, ivfThreshold: ivfThreshold))
            let encoded = try SegmentCodec.encode(contents)
            let segName = "segment_\(writerID)-\(segmentSequence).bin"
            try await remote.put(segName, encoded.bytes)
            let ref = SegmentRef(name: segName, size: UInt64(encoded.bytes.count), tailOffset: encoded.tailOffset,
                                 tailLength: encoded.tailLength, rowCount: UInt64(contents.rowCount),
                                 minID: contents.ids.min() ?? 0, maxID: contents.ids.max() ?? 0)
            let allSegments = (base?.segments ?? []) + [ref]

            var pk = try await loadPKIndex(base) ?? PKIndex(version: 0, segments: [], entries: [:])
            pk.version = newVersion
            pk.segments = allSegments.map(\.name)
            let ordinal = UInt32(allSegments.count - 1)
            for (row, id) in contents.ids.enumerated() {
                pk.entries[id] = PKIndex.Location(segment: ordinal, row: UInt32(row))
            }
            let pkBytes = try pk.encode()
            let pkName = "pkindex_\(Manifest.objectName(version: newVersion).dropFirst(9).dropLast(4))-\(writerID).bin"
            try await remote.put(pkName, pkBytes)

            let next = Manifest(version: newVersion, parentVersion: base?.version ?? 0,
                                commitTimeMicros: Int64(Date().timeIntervalSince1970 * 1_000_000),
                                writerEpoch: (base?.writerEpoch ?? 0), writerID: writerID, dimension: dimension,
                                metric: metric.rawValue, nextID: nextID, pkIndexObject: pkName,
                                pkIndexSize: UInt64(pkBytes.count), segments: allSegments)
            try await remote.putIfAbsent(Manifest.objectName(version: newVersion), try next.encode())
            manifest = next
            segments.append(SegmentReader(ref: ref, store: cached, metric: metric))
            memtable = Memtable(dimension: dimension, metric: metric)
            return newVersion
        } catch let e as StoreError where e.code == .alreadyExists {
            throw VecgoError(.conflict, "another writer committed version \(newVersion) first; the \(memtable.count) pending rows are kept in this handle", underlying: e)
        } catch {
            throw VecgoError.wrap(error, "committing version \(newVersion)")
        }
    }

    private func loadPKIndex(_ m: Manifest?) async throws -> PKIndex? {
        guard let m, !m.pkIndexObject.isEmpty else { return nil }
        let bytes = try await cached.read(m.pkIndexObject, range: 0..<m.pkIndexSize)
        return try PKIndex.decode(bytes, object: m.pkIndexObject)
    }

    /// Commits pending writes (on a writer), waits for the disk cache to settle, and closes the
    /// handle. Closing twice is allowed.
    public func close() async throws {
        guard !closed else { return }
        if !isReadOnly { try await commit() }
        await cached.disk?.flush()
        closed = true
    }

    // MARK: reads

    /// The `k` nearest rows to `query` over committed and pending data, nearest first.
    ///
    /// - Throws: ``VecgoError``: `.dimensionMismatch`, `.invalidArgument` (NaN, k ≤ 0 or k > 10000),
    ///   `.corrupted` when a segment is damaged, `.storage` when the store fails.
    public func search(_ query: [Float], k: Int, options: SearchOptions = SearchOptions()) async throws -> [SearchResult] {
        try checkOpen()
        try validate(query, what: "query")
        guard k >= 1, k <= 10_000 else { throw VecgoError(.invalidArgument, "k must be in 1...10000, got \(k)") }
        let q = metric == .cosine ? Distance.normalized(query) : query
        var top = TopK(k: k)
        for n in memtable.search(q, k: k, ef: max(options.ef, k)) { top.offer(n) }
        do {
            try await withThrowingTaskGroup(of: [Neighbor].self) { group in
                for s in segments {
                    group.addTask { try await s.search(q, k: k, options: options) }
                }
                for try await partial in group {
                    for n in partial { top.offer(n) }
                }
            }
        } catch {
            throw VecgoError.wrap(error, "searching version \(version)")
        }
        return top.sorted().map { SearchResult(id: $0.id, distance: $0.distance) }
    }

    /// Loads segments of the current version into the cache tiers ahead of queries, in
    /// parallel: the ones named (as `segment_….bin`, see ``segmentNames``), or all of them.
    /// Data goes into RAM up to its budget and into the disk cache when there is one; a graph
    /// segment's graph is loaded into memory. Returns the bytes of the segments warmed.
    ///
    /// - Throws: ``VecgoError``: `.notFound` for a name not in this version, `.storage` or
    ///   `.corrupted` when a read fails.
    @discardableResult
    public func warm(segments names: [String]? = nil) async throws -> UInt64 {
        try checkOpen()
        let chosen: [SegmentReader]
        if let names {
            let byName = Dictionary(segments.map { ($0.ref.name, $0) }, uniquingKeysWith: { a, _ in a })
            chosen = try names.map { name throws(VecgoError) in
                guard let s = byName[name] else {
                    throw VecgoError(.notFound, "segment '\(name)' is not part of version \(version)")
                }
                return s
            }
        } else {
            chosen = segments
        }
        do {
            return try await withThrowingTaskGroup(of: UInt64.self) { group in
                for s in chosen { group.addTask { try await s.warm() } }
                return try await group.reduce(0, +)
            }
        } catch {
            throw VecgoError.wrap(error, "warming version \(version)")
        }
    }

    /// The segment objects of the version this handle sees.
    public var segmentNames: [String] { segments.map(\.ref.name) }

    /// Searches like ``search(_:k:options:)`` and reports what this query cost: blocks served
    /// by RAM and disk, requests and bytes sent to the store, and its latency.
    public func searchWithStats(_ query: [Float], k: Int,
                                options: SearchOptions = SearchOptions()) async throws -> ([SearchResult], QueryStats) {
        let counters = QueryCounters()
        let clock = ContinuousClock()
        let start = clock.now
        let results = try await TierStats.$query.withValue(counters) {
            try await search(query, k: k, options: options)
        }
        let d = clock.now - start
        let micros = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
        return (results, QueryStats(tiers: counters.snapshot(), latencyMicros: micros))
    }

    /// Moves this handle to the newest committed version. Returns the version now seen.
    @discardableResult
    public func refresh() async throws -> UInt64 {
        try checkOpen()
        guard isReadOnly || memtable.isEmpty else {
            throw VecgoError(.invalidArgument, "commit pending writes before refreshing a writer")
        }
        let latest: Manifest?
        do { latest = try await Self.latestManifest(cached) } catch { throw VecgoError.wrap(error, "refreshing") }
        if let latest, latest.version > version {
            let known = Dictionary(segments.map { ($0.ref.name, $0) }, uniquingKeysWith: { a, _ in a })
            segments = latest.segments.map { known[$0.name] ?? SegmentReader(ref: $0, store: cached, metric: metric) }
            Self.prefetchTails(segments.filter { known[$0.ref.name] == nil })
            manifest = latest
            nextID = max(nextID, latest.nextID)
        }
        return version
    }

    /// The cache counters of this handle since it opened.
    public func tierCounters() -> TierCounters { cached.stats.snapshot() }

    // MARK: checks

    private func checkOpen() throws(VecgoError) {
        guard !closed else { throw VecgoError(.closed, "this handle is closed") }
    }

    private func checkWritable() throws(VecgoError) {
        try checkOpen()
        guard !isReadOnly else {
            throw VecgoError(.readOnly, "this handle was opened read-only; open a writer (without .readOnly) to write")
        }
    }

    private func validate(_ v: [Float], what: String) throws(VecgoError) {
        guard v.count == dimension else {
            throw VecgoError(.dimensionMismatch, "\(what) has \(v.count) dimensions, the database has \(dimension)")
        }
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw VecgoError(.invalidArgument, "\(what) element \(i) is \(v[i]); every element must be finite")
        }
    }
}
