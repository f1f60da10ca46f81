// The memtable: rows written but not yet committed, searchable at once, and its lazily built graph.
import IndexCore
import SegmentFormat
import Synchronization

/// Rows written but not yet committed: searchable at once (an exact scan while few, an HNSW
/// graph beyond), made durable by a commit.
///
/// Rows are numbered in insertion order and the graph is keyed by those numbers. Writing a key
/// again (an upsert) appends a new row and marks the old one dead; a delete marks it dead. Dead
/// rows stay in the segment a commit writes (the graph needs them) but the pk-index points
/// only at live ones. The graph is built lazily, when a search or a graph segment needs it:
/// a bulk write that becomes an IVF segment never pays for one.
struct Memtable: Sendable {
    let dimension: Int
    let metric: Metric
    private(set) var ids: [UInt64] = []
    private(set) var vectors: [Float] = []
    private(set) var metadata: [Metadata] = []
    private(set) var payloads: [[UInt8]] = []
    /// Whether each row is dead (replaced or deleted).
    private(set) var dead: [Bool] = []
    /// The graph over the rows, built up to the rows a search or a graph segment needs. Copies
    /// of a table share it: they agree on every row it holds (a copy never appends after another did).
    let graph: LazyGraph
    /// The live row of each key.
    private(set) var rowOf: [UInt64: Int] = [:]

    /// Whether the table may build a graph. A table only laid out as flat or IVF (compaction of
    /// many rows) does not; it cannot be searched.
    let indexed: Bool

    /// Below this many rows a search scans exactly; the graph is still built for the segment.
    static let exactBelow = 1024

    init(dimension: Int, metric: Metric, indexed: Bool = true) {
        self.dimension = dimension
        self.metric = metric
        self.indexed = indexed
        graph = LazyGraph(HNSWIndex(dimension: dimension, metric: metric, parameters: .init(m: 16, efConstruction: 100)))
    }

    /// No rows at all (live or dead).
    var isEmpty: Bool { ids.isEmpty }
    /// Rows, dead ones included.
    var count: Int { ids.count }
    /// Live rows.
    var liveCount: Int { rowOf.count }

    /// Adds the row of key `id`, replacing a live row of the same key.
    mutating func put(id: UInt64, vector: [Float], metadata m: Metadata, payload: [UInt8]) {
        remove(id: id)
        let row = ids.count
        ids.append(id)
        vectors.append(contentsOf: vector)
        metadata.append(m)
        payloads.append(payload)
        dead.append(false)
        rowOf[id] = row
    }

    /// Marks the live row of `id` dead; returns whether there was one.
    @discardableResult
    mutating func remove(id: UInt64) -> Bool {
        guard let row = rowOf.removeValue(forKey: id) else { return false }
        dead[row] = true
        graph.markDead(row: row)
        return true
    }

    /// The graph with every row of this table in it; `added` is told each row put in by this
    /// call (see ``LazyGraph/catchUp(_:added:)``).
    func indexedGraph(added: ((Int) -> Void)? = nil) -> HNSWIndex {
        precondition(indexed, "a table built without its graph is not searchable")
        return graph.catchUp(self, added: added)
    }

    /// The `k` nearest live rows (matching `filter`, not in `excluding`), nearest first.
    func search(_ query: [Float], k: Int, ef: Int, filter: Filter?, excluding: Bitmap? = nil) -> [Neighbor] {
        precondition(indexed, "a table built without its graph is not searchable")
        guard !rowOf.isEmpty else { return [] }
        var allowed: Bitmap?
        if let filter {
            var b = Bitmap(count: count)
            for row in rowOf.values where filter.matches(metadata[row]) && !(excluding?.contains(row) ?? false) { b.insert(row) }
            allowed = b
        } else if let excluding {
            allowed = excluding.inverted()  // dead rows stay in it: they are skipped anyway
        }
        let matching = min(allowed?.cardinality ?? rowOf.count, rowOf.count)
        guard matching > 0 else { return [] }
        if count < Self.exactBelow { return exactSearch(query, k: k, allowed: allowed) }
        // The planner chooses between a scan of the allowed rows and the graph (ef widened for a
        // narrow filter); a graph search that finds too few is completed by the scan.
        let plan = FilterPlanner().plan(hnswRows: count, matching: matching, k: k, ef: ef)
        guard case .graph = plan else { return exactSearch(query, k: k, allowed: allowed) }
        // The graph holds this table's rows below `inGraph`: all of them, unless a build running
        // elsewhere (a commit's segment) has not reached the end yet; the rest are scanned.
        let (index, built) = graph.forSearch(self)
        let inGraph = min(built, count)
        var top = TopK(k: k)
        var dropped = false
        for h in index.search(query, k: k, plan: plan, allowed: allowed) {
            // A row past `inGraph` is a newer copy's (or scanned below): not this search's.
            if Int(h.id) < inGraph { top.offer(h) } else { dropped = true }
        }
        if dropped { return exactSearch(query, k: k, allowed: allowed) }  // rare: the graph grew under this search
        scan(query, from: inGraph, allowed: allowed, into: &top)
        return top.sorted().map { Neighbor(id: ids[Int($0.id)], distance: $0.distance) }
    }

    /// Every live row (in `allowed`) scanned exactly.
    private func exactSearch(_ query: [Float], k: Int, allowed: Bitmap?) -> [Neighbor] {
        var top = TopK(k: k)
        scan(query, from: 0, allowed: allowed, into: &top)
        return top.sorted().map { Neighbor(id: ids[Int($0.id)], distance: $0.distance) }
    }

    /// Offers the live rows from row `first` on (in `allowed`) into `top`, by row number.
    private func scan(_ query: [Float], from first: Int, allowed: Bitmap?, into top: inout TopK) {
        guard first < count else { return }
        let dim = dimension
        query.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { v in
                if let allowed {  // only the allowed rows' vectors are read
                    FlatSearch.search(query: q.baseAddress!, allowed: allowed, rows: count, dimension: dim, metric: metric,
                                      into: &top, vector: { v.baseAddress! + $0 * dim }, id: { UInt64($0) },
                                      skip: { $0 < first || dead[$0] })
                } else {
                    FlatSearch.search(query: q.baseAddress!, vectors: UnsafeBufferPointer(rebasing: v[(first * dim)...]),
                                      dimension: dim, metric: metric, into: &top, id: { UInt64(first + $0) },
                                      skip: { dead[first + $0] })
                }
            }
        }
    }

    /// The stored parts of the live row of `id`.
    func row(id: UInt64) -> (metadata: Metadata, payload: [UInt8], vector: [Float])? {
        rowOf[id].map(row(at:))
    }

    /// The stored parts of row `r`.
    func row(at r: Int) -> (metadata: Metadata, payload: [UInt8], vector: [Float]) {
        (metadata[r], payloads[r], Array(vectors[r * dimension..<(r + 1) * dimension]))
    }

    /// The rows as segment contents, laid out as `layout` says, and the segment row of each
    /// live key. A graph segment keeps dead rows (its graph links through them); flat and IVF
    /// segments hold live rows only. `graphRowAdded` is told each row this call adds to the
    /// graph (a test hook).
    func contents(_ layout: SegmentLayout, graphRowAdded: ((Int) -> Void)? = nil) -> (SegmentContents, liveRows: [UInt64: Int]) {
        precondition(indexed || layout != .graph, "a graph layout needs the table's graph")
        let keep: [Int] = layout == .graph ? Array(0..<count) : rowOf.values.sorted()
        func pick<T>(_ all: [T]) -> [T] { keep.count == all.count ? all : keep.map { all[$0] } }
        var c = SegmentContents(dimension: dimension, metric: metric.rawValue, ids: pick(ids),
                                vectors: keep.count == count ? vectors : keep.flatMap { vectors[$0 * dimension..<($0 + 1) * dimension] },
                                metadata: metadata.contains { !$0.isEmpty } ? pick(metadata) : [],
                                payloads: payloads.contains { !$0.isEmpty } ? pick(payloads) : [])
        var order = keep  // segment row → memtable row
        switch layout {
        case .flat:
            break
        case .graph:
            let g = indexedGraph(added: graphRowAdded).exportGraph()
            c.graph = GraphLayout(m: g.m, entryPoint: g.entryPoint, maxLevel: g.maxLevel, levels: g.levels,
                                  level0: g.level0, upper: g.upper)
        case .ivf(let nlist):
            // Rows are reordered partition by partition; metadata and payloads follow their rows.
            let ivf = IVFIndex(vectors: c.vectors, ids: (0..<UInt64(keep.count)).map { $0 }, dimension: dimension,
                               metric: metric, nlist: nlist)
            let perm = ivf.ids.map { Int($0) }
            order = perm.map { keep[$0] }
            c.ids = perm.map { c.ids[$0] }
            c.vectors = ivf.vectors
            if !c.metadata.isEmpty { c.metadata = perm.map { c.metadata[$0] } }
            if !c.payloads.isEmpty { c.payloads = perm.map { c.payloads[$0] } }
            c.ivf = IVFLayout(centroids: ivf.centroids, offsets: ivf.offsets.map { UInt64($0) })
            c.codes = Codes.build(vectors: c.vectors, dimension: dimension, centroids: ivf.centroids, offsets: ivf.offsets)
        }
        var segRowOfMemRow: [Int: Int] = [:]
        for (segRow, memRow) in order.enumerated() { segRowOfMemRow[memRow] = segRow }
        return (c, rowOf.mapValues { segRowOfMemRow[$0]! })
    }
}

/// How a commit lays out a segment.
enum SegmentLayout: Sendable, Equatable {
    /// Vectors and ids only: small segments, scanned exactly.
    case flat
    /// Flat plus the memtable's HNSW graph, loaded by warm readers without rebuilding.
    case graph
    /// Rows partition by partition with IVF centroids in the tail: large segments, for cold reads.
    case ivf(nlist: Int)

    /// The layout for `rows` rows of `dimension` floats: IVF (partitioned, so a cold query
    /// reads a sliver) from `ivfThreshold` rows or `ivfThresholdBytes` of vectors on, else a
    /// graph from 2 000 rows, else flat. Graph and flat segments are read whole, so they stay small.
    static func choose(rows: Int, dimension: Int, ivfThreshold: Int, ivfThresholdBytes: Int) -> SegmentLayout {
        if rows >= ivfThreshold || rows * dimension * 4 >= ivfThresholdBytes {
            return .ivf(nlist: max(1, Int(Double(rows).squareRoot())))
        }
        if rows >= 2_000 { return .graph }
        return .flat
    }
}

/// The writes of a handle not yet committed: rows (upserts and inserts) in a memtable, keys
/// deleted, and the keys changed with the view they were changed against (for a rebase's
/// conflict check).
struct PendingWrites: Sendable {
    var memtable: Memtable
    var deletes: Set<UInt64> = []
    var touched: Set<UInt64> = []
    /// Every key written here (put, deleted), in order, repeats included: what a search's
    /// ``HiddenRows`` has not yet seen is a suffix of it. Only grows until a commit takes the batch.
    private(set) var writeLog: [UInt64] = []
    /// Tells these writes apart from any others (a new batch, a merge): ``HiddenRows`` extends
    /// what it computed only for the same writes.
    let identity = Identity()

    /// An object whose only use is its identity.
    final class Identity: Sendable {}
    var touchedView: VersionView?
    /// Rows written out as segments before the commit (oldest first), when the memtable grew
    /// past `.maxSegmentBytes`: they are older than the memtable's rows.
    var spilled: [Spill] = []

    init(dimension: Int, metric: Metric) {
        memtable = Memtable(dimension: dimension, metric: metric)
    }

    var isEmpty: Bool { memtable.isEmpty && deletes.isEmpty && spilled.isEmpty }

    /// Rows and deletes, counted (rows written out as segments: their live ones).
    var count: Int { memtable.count + deletes.count + spilled.reduce(0) { $0 + $1.liveRows.count } }

    mutating func touch(_ id: UInt64, view: VersionView) {
        if touched.isEmpty { touchedView = view }
        touched.insert(id)
    }

    mutating func put(id: UInt64, vector: [Float], metadata: Metadata, payload: [UInt8]) {
        writeLog.append(id)
        deletes.remove(id)
        unspill(id)
        memtable.put(id: id, vector: vector, metadata: metadata, payload: payload)
    }

    mutating func delete(id: UInt64) {
        writeLog.append(id)
        memtable.remove(id: id)
        unspill(id)
        deletes.insert(id)
    }

    /// A spilled row of `id` is no longer live (a newer write replaced it).
    private mutating func unspill(_ id: UInt64) {
        for i in spilled.indices {
            if spilled[i].liveRows.removeValue(forKey: id) != nil { return }  // a key is live in one place at most
        }
    }

    /// These writes with `newer` applied on top: what is pending again after a commit of
    /// these writes failed while `newer` accumulated. A new table (its graph is built again
    /// when needed), so the failed batch's table is never changed.
    func merged(with newer: PendingWrites) -> PendingWrites {
        var m = PendingWrites(dimension: memtable.dimension, metric: memtable.metric)
        m.spilled = spilled
        for (id, row) in memtable.rowOf.sorted(by: { $0.value < $1.value }) {
            let r = memtable.row(at: row)
            m.memtable.put(id: id, vector: r.vector, metadata: r.metadata, payload: r.payload)
        }
        m.deletes = deletes
        // Newer writes, oldest first: their spilled rows, their table, their deletes.
        for s in newer.spilled {
            for id in s.liveRows.keys {
                m.unspill(id)
                m.memtable.remove(id: id)
                m.deletes.remove(id)
            }
            m.spilled.append(s)
        }
        for (id, row) in newer.memtable.rowOf.sorted(by: { $0.value < $1.value }) {
            let r = newer.memtable.row(at: row)
            m.put(id: id, vector: r.vector, metadata: r.metadata, payload: r.payload)
        }
        for id in newer.deletes { m.delete(id: id) }
        m.touched = touched.union(newer.touched)
        m.writeLog = writeLog + newer.writeLog  // spilled rows' keys too (the puts above repeat some)
        m.touchedView = touchedView ?? newer.touchedView
        return m
    }
}

/// Pending rows a writer has written out as a segment before its commit: the object is in the
/// store (unreferenced until the commit publishes it), searched through a reader like any
/// segment, its live rows tracked here as newer writes replace them.
struct Spill: Sendable {
    /// The segment object (its bytes are not kept: they are read back if it must be rewritten).
    var object: Vecgo.OwnObject
    /// The segment as a manifest will list it.
    var ref: SegmentRef
    /// The live rows: key → row in the segment.
    var liveRows: [UInt64: Int]
    /// Reads and searches the segment.
    let reader: SegmentReader

    /// The live rows as a bitmap, or nil when every row is live.
    var allowed: Bitmap? {
        guard UInt64(liveRows.count) < ref.rowCount else { return nil }
        var b = Bitmap(count: Int(ref.rowCount))
        for row in liveRows.values { b.insert(row) }
        return b
    }
}

/// An HNSW graph over a memtable's rows, built lazily up to the rows needed. Thread-safe, and
/// nobody waits for a whole build: rows go in one at a time, each under the lock (so the count
/// of rows in the graph and the graph change together), and a search that finds the graph being
/// built by another party (a segment build, a background catch-up) uses it as far as it goes and
/// scans the rest exactly instead of waiting.
///
/// A search adds at most ``inlineRows`` rows itself. When the graph lags further (a bulk write
/// not yet searched), it starts a background catch-up (niced, see `Background`) and scans the
/// rows the graph lacks until that is done: a search never pays for a whole graph build. A
/// table done with (committed, written out, discarded) is ``retire()``d, which stops its
/// background catch-up; a segment build still completes the graph it needs.
final class LazyGraph: Sendable {
    private let index: HNSWIndex
    private struct State {
        /// Rows in the graph (rows `0..<built`).
        var built = 0
        /// Parties adding rows right now.
        var builders = 0
        /// Rows marked dead before the graph held them: a catch-up from an older copy of the
        /// table (taken before the mark) must not put them in alive.
        var deadAhead: Set<Int> = []
        /// Whether a background catch-up is running.
        var catchingUp = false
        /// Whether the table is done with: a background catch-up stops, none starts.
        var retired = false
    }
    private let state = Mutex(State())

    /// The most rows a search adds to the graph itself (a few milliseconds of inserts).
    static let inlineRows = 32

    init(_ index: HNSWIndex) { self.index = index }

    /// Adds the rows of `table` not yet in the graph (marking the dead ones) and returns it.
    /// `added` is told each row this call put in (off the lock): the segment build's test hook.
    /// A background catch-up (`background`) stops early when the table is retired.
    func catchUp(_ table: Memtable, added: ((Int) -> Void)? = nil, background: Bool = false) -> HNSWIndex {
        state.withLock { $0.builders += 1 }
        defer { state.withLock { $0.builders -= 1 } }
        while true {
            let row: Int? = state.withLock { s in
                guard s.built < table.count, !(background && s.retired) else { return nil }
                let r = s.built
                index.insert(Array(table.vectors[r * table.dimension..<(r + 1) * table.dimension]), id: UInt64(r))
                if s.deadAhead.remove(r) != nil || table.dead[r] { _ = index.markDeleted(id: UInt64(r)) }
                s.built += 1
                return r
            }
            guard let row else { return index }
            added?(row)
        }
    }

    /// The graph for a search of `table` and the rows of the table it holds (`0..<rows`): all
    /// of them, caught up here when few are missing and nobody else is adding rows; otherwise
    /// the rows it holds so far (a background catch-up started if none runs), and the caller
    /// scans the others.
    func forSearch(_ table: Memtable) -> (index: HNSWIndex, rows: Int) {
        enum Next { case done, inline, scan, startBackground }
        let (built, next) = state.withLock { s -> (Int, Next) in
            let lag = table.count - s.built
            if lag <= 0 { return (s.built, .done) }
            if s.builders > 0 || s.catchingUp { return (s.built, .scan) }
            if lag <= Self.inlineRows { return (s.built, .inline) }
            if s.retired { return (s.built, .scan) }
            s.catchingUp = true
            return (s.built, .startBackground)
        }
        switch next {
        case .done:
            return (index, table.count)
        case .inline:
            return (catchUp(table), table.count)
        case .scan:
            return (index, built)
        case .startBackground:
            Background.detach { [self] in
                _ = catchUp(table, background: true)
                state.withLock { $0.catchingUp = false }
            }
            return (index, built)
        }
    }

    /// Rows in the graph (rows `0..<builtRows` of the table).
    var builtRows: Int { state.withLock { $0.built } }

    /// The table is done with: a background catch-up stops after its current row.
    func retire() {
        state.withLock { $0.retired = true }
    }

    /// Marks row `row` dead in the graph when the graph holds it (a later catch-up marks it otherwise).
    func markDead(row: Int) {
        state.withLock { s in
            if row < s.built { _ = index.markDeleted(id: UInt64(row)) } else { s.deadAhead.insert(row) }
        }
    }
}
