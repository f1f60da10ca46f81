// The query executor: search over committed segments and pending rows, filling in fields,
// warming segments, refreshing to the newest version, and the tier counters.
import IndexCore
import SegmentFormat
import Stores
public import Tiering
import Foundation
import Logging

extension Vecgo {
    /// The `k` nearest live rows to `query` over committed and pending data, nearest first.
    ///
    /// Rows replaced by an upsert or removed by a delete are never returned, whether the
    /// change is committed or pending. With a `filter`, only rows whose metadata match are
    /// considered, and `k` results come back whenever `k` matching rows exist: selective
    /// filters scan the matching rows exactly, others search the graph or the IVF partitions
    /// with the filter as a bitmap and widen the search when it finds too few.
    ///
    /// - Throws: ``VecgoError``: `.dimensionMismatch`, `.invalidArgument` (NaN, k ≤ 0 or k > 10000),
    ///   `.corrupted` when a segment is damaged, `.storage` when the store fails.
    public func search(_ query: [Float], k: Int, filter: Filter? = nil, include: Include = [],
                       options: SearchOptions = SearchOptions()) async throws -> [SearchResult] {
        try checkOpen()
        let started = ContinuousClock.now
        defer { metrics.queryEnded(started: started) }
        try validate(query, what: "query")
        guard k >= 1, k <= 10_000 else { throw VecgoError(.invalidArgument, "k must be in 1...10000, got \(k)") }
        let q = normalizedIfCosine(query)
        let view = self.view
        let pending = self.pending, flushing = self.flushing
        var top = TopK(k: k)
        var origin: [UInt64: (segment: Int, row: Int)] = [:]  // where each committed hit lives
        do {
            // Rows that newer writes hide (committed rows of keys written since the last commit,
            // a commit in flight's rows of keys written since it began) are left out by row, in
            // the bitmaps each part searches with: each is asked for k rows, however many are pending.
            let allowed = try await allowedRows(view, pending: pending, flushing: flushing)
            if !pending.memtable.isEmpty || !(flushing?.memtable.isEmpty ?? true) {
                let hits = await Self.memtableHits(q, k: k, ef: options.ef, filter: filter, pending: pending.memtable,
                                                   flushing: flushing?.memtable, hiddenInFlushing: allowed.flushingTable)
                for n in hits { top.offer(n) }
            }
            // Pending rows written out as segments are searched with the committed ones: their
            // live rows only (a commit in flight's, less those rewritten or deleted since).
            // Each segment answers with exact hits or, IVF segments with codes, with candidates;
            // the candidates of all segments are then re-ranked together, so the exact reads go
            // to the best rows overall, however many segments there are.
            var candidates: [(segment: Int, candidate: CodeCandidate)] = []
            // The committed segments, then the spilled ones (pending, then in flight).
            let readers = view.segments + pending.spilled.map(\.reader) + (flushing?.spilled.map(\.reader) ?? [])
            let liveIn = allowed.committed + allowed.pendingSpills + allowed.flushingSpills
            let totalRows = readers.reduce(UInt64(0)) { $0 + $1.ref.rowCount }
            func offer(_ segment: Int, _ hits: [SegmentHit]) {
                for h in hits {
                    top.offer(Neighbor(id: h.id, distance: h.distance))
                    if !include.isEmpty { origin[h.id] = (segment, h.row) }  // only `resolve` needs it
                }
            }
            try await withThrowingTaskGroup(of: (Int, SegmentAnswer).self) { group in
                for (i, s) in readers.enumerated() {
                    group.addTask {
                        var allowed = liveIn[i]
                        if let filter {
                            let matching = filter.bitmap(try await s.metadata(), rows: Int(s.ref.rowCount))
                            allowed = allowed.map { $0.intersection(matching) } ?? matching
                        }
                        return (i, try await s.answer(q, k: k, options: options, allowed: allowed, totalRows: totalRows))
                    }
                }
                for try await (segment, answer) in group {
                    switch answer {
                    case .hits(let hits): offer(segment, hits)
                    case .candidates(let found):
                        for c in found { candidates.append((segment, c)) }
                    }
                }
            }
            if !candidates.isEmpty {
                let chosen = SegmentReader.rerankSet(candidates, k: k, rerank: options.rerank, exact: top.sorted().map(\.distance))
                let bySegment = Dictionary(grouping: chosen, by: \.segment)
                try await withThrowingTaskGroup(of: (Int, [SegmentHit]).self) { group in
                    for (segment, list) in bySegment {
                        let reader = readers[segment]
                        group.addTask { (segment, try await reader.rerank(q, list.map(\.candidate))) }
                    }
                    for try await (segment, hits) in group { offer(segment, hits) }
                }
            }
            let hits = top.sorted()
            guard !include.isEmpty else { return hits.map { SearchResult(id: $0.id, distance: $0.distance) } }
            return try await resolve(hits, include: include, view: view, readers: readers, pending: pending, flushing: flushing,
                                     origin: origin)
        } catch {
            throw VecgoError.wrap(error, "searching version \(view.version)")
        }
    }

    /// What a search may return of `view`'s segments and of the commit in flight, once newer
    /// writes hide older rows of their keys (see ``HiddenRows``, kept from search to search and
    /// extended with the keys written since).
    func allowedRows(_ view: VersionView, pending: PendingWrites, flushing: PendingWrites?) async throws
        -> (committed: [Bitmap?], flushingTable: Bitmap?, flushingSpills: [Bitmap?], pendingSpills: [Bitmap?]) {
        let live = try await view.live()
        guard !pending.writeLog.isEmpty || !(flushing?.writeLog.isEmpty ?? true) else {
            hiddenRows = nil  // nothing hidden: keep no older version alive for it
            return (live, nil, flushing?.spilled.map(\.allowed) ?? [], pending.spilled.map(\.allowed))
        }
        var rows = hiddenRows
        if !(rows?.isCurrent(view: view, pending: pending, flushing: flushing) ?? false) {
            let pk = try await view.pk()
            rows = HiddenRows.update(hiddenRows, view: view, live: live, pk: pk, pending: pending, flushing: flushing)
            hiddenRows = rows
        }
        return (rows!.committed, rows!.flushingTable, rows!.flushingSpills, rows!.pendingSpills)
    }

    /// The hits among pending rows: the memtable's, and those of the memtable of a commit in
    /// flight (`flushing`) but for its rows in `hiddenInFlushing` (their keys were written
    /// since). Runs off the actor: a memtable search may add rows to its graph, or scan rows a
    /// segment build is still adding.
    @concurrent
    nonisolated static func memtableHits(_ q: [Float], k: Int, ef: Int, filter: Filter?, pending: Memtable,
                                         flushing: Memtable?, hiddenInFlushing: Bitmap?) async -> [Neighbor] {
        var hits = pending.search(q, k: k, ef: max(ef, k), filter: filter)
        if let flushing {
            hits += flushing.search(q, k: k, ef: max(ef, k), filter: filter, excluding: hiddenInFlushing)
        }
        return hits
    }

    /// Fills in what `include` asks for: from the memtable for pending rows, else from the
    /// segment row the search found (`origin`; no pk-index needed).
    func resolve(_ hits: [Neighbor], include: Include, view: VersionView, readers: [SegmentReader], pending: PendingWrites,
                         flushing: PendingWrites?, origin: [UInt64: (segment: Int, row: Int)]) async throws -> [SearchResult] {
        var results = hits.map { SearchResult(id: $0.id, distance: $0.distance) }
        var wanted: [Int: [(result: Int, row: Int)]] = [:]
        for (i, h) in hits.enumerated() {
            // A hit from a segment (committed, or pending rows written out) is read from the row
            // it came from: the memtable of a commit in flight may hold an older row of its key.
            if origin[h.id] == nil, let row = pending.memtable.row(id: h.id) ?? flushing?.memtable.row(id: h.id) {
                if include.contains(.metadata) { results[i].metadata = row.metadata }
                if include.contains(.payload) { results[i].payload = row.payload }
                if include.contains(.vector) { results[i].vector = row.vector }
            } else if let at = origin[h.id] {
                wanted[at.segment, default: []].append((i, at.row))
            } else {
                throw VecgoError(.corrupted, "key \(h.id) came back from version \(view.version) without the row it came from")
            }
        }
        for (segment, list) in wanted {
            let rows = try await readers[segment].rows(list.map(\.row), include: include)
            for (i, row) in list {
                guard let (m, p, v) = rows[row] else { continue }
                results[i].metadata = m
                results[i].payload = p
                results[i].vector = v
            }
        }
        return results
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
        let segments = view.segments
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
    public var segmentNames: [String] { view.segments.map(\.ref.name) }

    /// Searches like ``search(_:k:filter:include:options:)`` and reports what this query
    /// cost: blocks served by RAM and disk, requests and bytes sent to the store, and its latency.
    public func searchWithStats(_ query: [Float], k: Int, filter: Filter? = nil, include: Include = [],
                                options: SearchOptions = SearchOptions()) async throws -> ([SearchResult], QueryStats) {
        let counters = QueryCounters()
        let clock = ContinuousClock()
        let start = clock.now
        let results = try await TierStats.$query.withValue(counters) {
            try await search(query, k: k, filter: filter, include: include, options: options)
        }
        let d = clock.now - start
        let micros = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
        return (results, QueryStats(tiers: counters.snapshot(), latencyMicros: micros))
    }

    /// Moves this handle to the newest committed version (a whole version: never part of a
    /// commit). Returns the version now seen.
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` on a writer with pending writes or a handle
    ///   opened at a past version.
    @discardableResult
    public func refresh() async throws -> UInt64 {
        try checkOpen()
        guard config.atVersion == nil, config.asOf == nil else {
            throw VecgoError(.invalidArgument, "this handle was opened at a past version and stays there; open another to see the newest")
        }
        guard isReadOnly || (pending.isEmpty && flushing == nil) else {
            throw VecgoError(.invalidArgument, "commit pending writes before refreshing a writer")
        }
        let latest: Manifest?
        let askedAt = ContinuousClock.now
        do { latest = try await Self.latestManifest(cached, commits: commits, after: version) } catch { throw VecgoError.wrap(error, "refreshing") }
        viewConfirmedAt = askedAt
        if let latest, latest.version > version {
            view = VersionView(latest, store: cached, metric: metric, previous: view)
        }
        return version
    }

    /// The version this handle sees: its number, commit time, segments and committed rows
    /// (version 0, no segments, for a database with no commit yet).
    public var versionInfo: VersionInfo {
        let m = view.manifest
        return VersionInfo(version: m?.version ?? 0,
                           commitTime: Date(timeIntervalSince1970: Double(m?.commitTimeMicros ?? 0) / 1e6),
                           segments: m?.segments.count ?? 0, rows: m?.segments.reduce(0) { $0 + $1.rowCount } ?? 0,
                           writerEpoch: m?.writerEpoch ?? 0)
    }

    /// The cache counters of this handle since it opened.
    public func tierCounters() -> TierCounters { cached.stats.snapshot() }

    /// Bytes of decoded segment parts (graphs, flat rows, metadata) this handle keeps for warm
    /// queries; at most ``OpenOption/decodedCacheSize(_:)``.
    public func decodedBytes() -> Int { view.budget?.bytes ?? 0 }
}
