/// The HNSW graph index (Malkov & Yashunin): inserts, searches, deletion marks. Persistence is in
/// HNSWGraph.swift, the per-search working memory in HNSWScratch.swift, and the level-0 walk
/// (the hot path) in CVecgoNative/hnsw.c.
internal import CVecgoNative
import Foundation

/// A hierarchical navigable small-world graph (Malkov & Yashunin) over float32 vectors.
///
/// Memory layout follows hnswlib: one block per node, 64-byte aligned, holding the node's vector
/// then its level-0 links (a count, then up to `2M` neighbours), so a visit touches one region;
/// upper-level links per node. Searches run concurrently with each other and interleave safely
/// with one writer's inserts (a readers-writer lock); deleted rows are marked, traversed and
/// never returned.
public final class HNSWIndex: @unchecked Sendable {
    /// Build and search parameters.
    public struct Parameters: Sendable, Hashable {
        /// Links per node on upper levels (level 0 keeps `2M`).
        public var m: Int = 16
        /// Candidate list size while inserting.
        public var efConstruction: Int = 200
        /// Default candidate list size while searching.
        public var efSearch: Int = 64
        /// Seed of the level generator, so builds are repeatable.
        public var seed: UInt64 = 0x5EED
        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 0x5EED) {
            self.m = m
            self.efConstruction = efConstruction
            self.efSearch = efSearch
            self.seed = seed
        }
    }

    /// Floats per vector.
    public let dimension: Int
    /// The metric (cosine expects normalised vectors).
    public let metric: Metric
    /// The parameters the graph was built with.
    public let parameters: Parameters

    let m: Int, m0: Int
    private let levelMultiplier: Double
    /// Bytes from one node's block to the next (a multiple of 64).
    private let blockStride: Int
    /// Where a block's level-0 links start (after the vector).
    private let linksOffset: Int
    private var capacity = 0
    private(set) var nodeCount = 0
    private var blocks: UnsafeMutableRawPointer
    private(set) var upper: [[UInt32]] = []   // per node: (level-1) * (m + 1) slots
    private(set) var levels: [UInt8] = []
    private var externalIDs: [UInt64] = []
    private var deleted: [Bool] = []
    private var deletedCount = 0
    private(set) var entryPoint: UInt32 = 0
    private(set) var maxLevel = -1
    private var rng: SplitMix64
    let lock = ReadWriteLock()
    private let scratches = ScratchPool()
    private let kernel: vecgo_pair_fn

    /// Creates an empty graph.
    public init(dimension: Int, metric: Metric, parameters: Parameters = Parameters()) {
        precondition(dimension > 0 && parameters.m >= 2 && parameters.efConstruction >= 1)
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        m = parameters.m
        m0 = 2 * parameters.m
        levelMultiplier = 1 / log(Double(parameters.m))
        rng = SplitMix64(seed: parameters.seed)
        linksOffset = dimension * 4
        blockStride = (dimension * 4 + (m0 + 1) * 4 + 63) & ~63
        blocks = .allocate(byteCount: 64, alignment: 64)
        kernel = metric == .l2 ? vecgo_l2sq_fn() : vecgo_dot_fn()
    }

    deinit { blocks.deallocate() }

    /// Live (not deleted) rows.
    public var count: Int { lock.read { nodeCount - deletedCount } }

    /// Bytes held by node blocks and upper links (not counting Swift array headers).
    public var memoryBytes: Int {
        lock.read { nodeCount * (blockStride + 8 + 2) + upper.reduce(0) { $0 + $1.count * 4 } }
    }

    @inline(__always)
    private func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        let d = kernel(a, b, dimension)
        switch metric {
        case .l2: return d
        case .cosine: return 1 - d
        case .dot: return -d
        }
    }

    @inline(__always) private func vector(_ i: UInt32) -> UnsafeMutablePointer<Float> {
        (blocks + Int(i) * blockStride).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) private func links0(_ i: UInt32) -> UnsafeMutablePointer<UInt32> {
        (blocks + Int(i) * blockStride + linksOffset).assumingMemoryBound(to: UInt32.self)
    }

    private func grow(to newCapacity: Int) {
        let b = UnsafeMutableRawPointer.allocate(byteCount: max(newCapacity, 1) * blockStride, alignment: 64)
        b.copyMemory(from: blocks, byteCount: nodeCount * blockStride)
        blocks.deallocate()
        blocks = b
        capacity = newCapacity
    }

    /// Loads stored vectors and links (the stored layout: vectors contiguous, level-0 links
    /// `2m + 1` slots per node) into node blocks.
    func load(vectors v: [Float], ids: [UInt64], graph: HNSWGraph) {
        lock.write {
            grow(to: max(ids.count, 1))
            v.withUnsafeBufferPointer { src in
                graph.level0.withUnsafeBufferPointer { l0 in
                    for i in 0..<ids.count {
                        vector(UInt32(i)).update(from: src.baseAddress! + i * dimension, count: dimension)
                        links0(UInt32(i)).update(from: l0.baseAddress! + i * (m0 + 1), count: m0 + 1)
                    }
                }
            }
            nodeCount = ids.count
            upper = graph.upper
            levels = graph.levels
            externalIDs = ids
            deleted = [Bool](repeating: false, count: ids.count)
            entryPoint = graph.entryPoint
            maxLevel = graph.maxLevel
        }
    }

    /// Level-0 links in the stored layout (`2m + 1` slots per node). Under the lock.
    func exportLevel0() -> [UInt32] {
        [UInt32](unsafeUninitializedCapacity: nodeCount * (m0 + 1)) { out, n in
            for i in 0..<nodeCount {
                (out.baseAddress! + i * (m0 + 1)).initialize(from: links0(UInt32(i)), count: m0 + 1)
            }
            n = nodeCount * (m0 + 1)
        }
    }

    /// Adds a vector under `id` (the caller's key, returned by searches).
    public func insert(_ vector: [Float], id: UInt64) {
        precondition(vector.count == dimension, "vector has \(vector.count) dimensions, index has \(dimension)")
        lock.write { insertLocked(vector, id: id) }
    }

    private func insertLocked(_ v: [Float], id: UInt64) {
        if nodeCount == capacity { grow(to: max(1024, capacity * 2)) }
        let node = UInt32(nodeCount)
        v.withUnsafeBufferPointer { vector(node).update(from: $0.baseAddress!, count: dimension) }
        links0(node).update(repeating: 0, count: m0 + 1)
        let level = Int(-log(Double.random(in: Double.ulpOfOne..<1, using: &rng)) * levelMultiplier)
        levels.append(UInt8(min(level, 255)))
        upper.append(level > 0 ? [UInt32](repeating: 0, count: level * (m + 1)) : [])
        externalIDs.append(id)
        deleted.append(false)
        nodeCount += 1
        guard maxLevel >= 0 else {
            entryPoint = node
            maxLevel = level
            return
        }
        let q = UnsafePointer(vector(node))
        var current = entryPoint
        var currentDistance = distance(q, vector(current))
        if level < maxLevel {
            for l in stride(from: maxLevel, to: level, by: -1) {
                greedy(q, &current, &currentDistance, level: l)
            }
        }
        let scratch = scratches.take()
        defer { scratches.give(scratch) }
        for l in stride(from: min(level, maxLevel), through: 0, by: -1) {
            var found = searchLayer(q, entry: current, entryDistance: currentDistance, ef: parameters.efConstruction,
                                    level: l, scratch: scratch)
            let selected = selectNeighbors(&found, max: m)
            setLinks(node, level: l, selected.map(\.id))
            let limit = l == 0 ? m0 : m
            for s in selected { addLink(from: s.id, to: node, level: l, limit: limit) }
            current = found[0].id
            currentDistance = found[0].distance
        }
        if level > maxLevel {
            maxLevel = level
            entryPoint = node
        }
    }

    /// The heuristic of the paper (alg. 4): keep a candidate only if it is closer to the query
    /// than to every neighbour already kept. `candidates` must be ascending.
    private func selectNeighbors(_ candidates: inout [Scored], max count: Int) -> [Scored] {
        if candidates.count <= count { return candidates }
        var kept: [Scored] = []
        kept.reserveCapacity(count)
        for c in candidates {
            var good = true
            for k in kept where distance(vector(c.id), vector(k.id)) < c.distance {
                good = false
                break
            }
            if good {
                kept.append(c)
                if kept.count == count { break }
            }
        }
        return kept
    }

    private func neighbors(_ node: UInt32, level: Int) -> [UInt32] {
        if level == 0 {
            let p = links0(node)
            return Array(UnsafeBufferPointer(start: p + 1, count: Int(p.pointee)))
        }
        let base = (level - 1) * (m + 1)
        let row = upper[Int(node)]
        return Array(row[base + 1..<base + 1 + Int(row[base])])
    }

    private func setLinks(_ node: UInt32, level: Int, _ ids: [UInt32]) {
        if level == 0 {
            let p = links0(node)
            p.pointee = UInt32(ids.count)
            for (i, id) in ids.enumerated() { p[1 + i] = id }
        } else {
            let base = (level - 1) * (m + 1)
            upper[Int(node)][base] = UInt32(ids.count)
            for (i, id) in ids.enumerated() { upper[Int(node)][base + 1 + i] = id }
        }
    }

    private func addLink(from node: UInt32, to new: UInt32, level: Int, limit: Int) {
        if level == 0 {
            let p = links0(node)
            let n = Int(p.pointee)
            if n < limit {
                p[1 + n] = new
                p.pointee = UInt32(n + 1)
                return
            }
        }
        var current = neighbors(node, level: level)
        if current.count < limit {
            current.append(new)
            setLinks(node, level: level, current)
            return
        }
        let base = vector(node)
        var scored = (current + [new]).map { Scored(distance: distance(base, vector($0)), id: $0) }
        scored.sort { $0.distance < $1.distance }
        setLinks(node, level: level, selectNeighbors(&scored, max: limit).map(\.id))
    }

    private func greedy(_ q: UnsafePointer<Float>, _ current: inout UInt32, _ currentDistance: inout Float, level: Int) {
        var changed = true
        while changed {
            changed = false
            let base = (level - 1) * (m + 1)
            upper[Int(current)].withUnsafeBufferPointer { row in
                let n = Int(row[base])
                for i in 0..<n {
                    let c = row[base + 1 + i]
                    let d = distance(q, vector(c))
                    if d < currentDistance {
                        currentDistance = d
                        current = c
                        changed = true
                    }
                }
            }
        }
    }

    /// The level-0 view the C walk reads.
    private var layer0: vecgo_hnsw_layer0 {
        vecgo_hnsw_layer0(blocks: UnsafePointer(blocks.assumingMemoryBound(to: UInt8.self)), stride: blockStride,
                          links_offset: linksOffset, dimension: dimension, degree: m0, count: nodeCount,
                          metric: metric == .l2 ? 0 : metric == .cosine ? 1 : 2)
    }

    /// Level 0 by the C walk: the `ef` nearest (allowed) nodes, ascending.
    private func walk0(_ q: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int,
                       scratch: SearchScratch, allowed: UnsafePointer<UInt64>? = nil) -> UnsafeBufferPointer<vecgo_scored> {
        var g = layer0
        let n = vecgo_hnsw_search0(&g, scratch.raw, q, entry, entryDistance, ef, allowed)  // SIZE_MAX (-1): no memory
        precondition(n >= 0 && n <= ef, "out of memory in an HNSW search")
        return UnsafeBufferPointer(start: scratch.raw.pointee.results, count: n)
    }

    /// The ef nearest nodes on `level`, ascending.
    private func searchLayer(_ q: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int, level: Int,
                             scratch: SearchScratch) -> [Scored] {
        if level == 0 {
            return walk0(q, entry: entry, entryDistance: entryDistance, ef: ef, scratch: scratch)
                .map { Scored(distance: $0.distance, id: $0.id) }
        }
        scratch.begin(nodes: nodeCount, ef: ef, degree: m0)
        var candidates = BinaryHeap<NearestFirst>(capacity: ef * 4)
        var results = BinaryHeap<FarthestFirst>(capacity: ef + 1)
        _ = scratch.visit(entry)
        candidates.push(Scored(distance: entryDistance, id: entry))
        results.push(Scored(distance: entryDistance, id: entry))
        let base = (level - 1) * (m + 1)
        while let c = candidates.pop() {
            if results.count >= ef && c.distance > results.top.distance { break }
            upper[Int(c.id)].withUnsafeBufferPointer { row in
                for i in 0..<Int(row[base]) {
                    let nb = row[base + 1 + i]
                    guard scratch.visit(nb) else { continue }
                    let d = distance(q, vector(nb))
                    if results.count < ef || d < results.top.distance {
                        candidates.push(Scored(distance: d, id: nb))
                        results.push(Scored(distance: d, id: nb))
                        if results.count > ef { results.pop() }
                    }
                }
            }
        }
        return results.items.sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
    }

    /// The `k` nearest live rows to `query`, nearest first, with candidate list size `ef`
    /// (at least `k`; the parameters' `efSearch` when nil). With `allowed`, only those nodes
    /// (by insertion order) are returned.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, allowed: Bitmap? = nil) -> [Neighbor] {
        precondition(query.count == dimension && k > 0)
        return lock.read {
            guard maxLevel >= 0 else { return [] }
            let ef = max(ef ?? parameters.efSearch, k)
            return query.withUnsafeBufferPointer { qb -> [Neighbor] in
                let q = qb.baseAddress!
                var current = entryPoint
                var currentDistance = distance(q, vector(current))
                if maxLevel > 0 {
                    for l in stride(from: maxLevel, through: 1, by: -1) { greedy(q, &current, &currentDistance, level: l) }
                }
                let scratch = scratches.take()
                defer { scratches.give(scratch) }
                let want = deletedCount > 0 ? ef + min(deletedCount, ef) : ef
                var out: [Neighbor] = []
                out.reserveCapacity(k)
                let collect = { (found: UnsafeBufferPointer<vecgo_scored>) in
                    for s in found where !self.deleted[Int(s.id)] {
                        out.append(Neighbor(id: self.externalIDs[Int(s.id)], distance: s.distance))
                        if out.count == k { break }
                    }
                }
                if let allowed {
                    // The walk reads one bit per node: a bitmap shorter than the graph is padded.
                    let words = allowed.covering(nodeCount)
                    words.withUnsafeBufferPointer { w in
                        collect(walk0(q, entry: current, entryDistance: currentDistance, ef: want, scratch: scratch,
                                      allowed: w.baseAddress))
                    }
                } else {
                    collect(walk0(q, entry: current, entryDistance: currentDistance, ef: want, scratch: scratch))
                }
                return out
            }
        }
    }

    /// The exact `k` nearest live rows among `allowed` (all rows when nil), by a scan of the
    /// stored vectors: the fallback when a filter leaves too few rows for the graph to reach.
    public func exactSearch(_ query: [Float], k: Int, allowed: Bitmap? = nil) -> [Neighbor] {
        precondition(query.count == dimension && k > 0)
        return lock.read {
            var top = TopK(k: k)
            if let allowed {
                // Only the allowed rows' vectors are read: the cost follows the filter's matches.
                query.withUnsafeBufferPointer { q in
                    FlatSearch.search(query: q.baseAddress!, allowed: allowed, rows: nodeCount, dimension: dimension, metric: metric,
                                      into: &top, vector: { UnsafePointer(vector(UInt32($0))) }, id: { externalIDs[$0] },
                                      skip: { deleted[$0] })
                }
                return top.sorted()
            }
            query.withUnsafeBufferPointer { qb in
                for row in 0..<nodeCount where !deleted[row] {
                    let d = distance(qb.baseAddress!, vector(UInt32(row)))
                    if d <= top.threshold { top.offer(Neighbor(id: externalIDs[row], distance: d)) }
                }
            }
            return top.sorted()
        }
    }

    /// The stored vector of row `row` (insertion order).
    public func vector(row: Int) -> [Float] {
        lock.read {
            precondition(row >= 0 && row < nodeCount)
            return Array(UnsafeBufferPointer(start: vector(UInt32(row)), count: dimension))
        }
    }

    /// Marks the row inserted under `id` deleted: still traversed, never returned.
    /// Returns whether such a live row existed.
    @discardableResult
    public func markDeleted(id: UInt64) -> Bool {
        lock.write {
            // Graphs keyed by insertion order (id == row) find the row directly.
            let direct = id < UInt64(externalIDs.count) && externalIDs[Int(id)] == id ? Int(id) : nil
            guard let i = direct ?? externalIDs.firstIndex(of: id), !deleted[i] else { return false }
            deleted[i] = true
            deletedCount += 1
            return true
        }
    }
}

/// A candidate: a node and its distance to the query.
struct Scored {
    var distance: Float
    var id: UInt32
}

/// Candidates: the nearest on top.
enum NearestFirst: HeapOrder {
    static func before(_ a: Scored, _ b: Scored) -> Bool { a.distance < b.distance }
}

/// Results: the farthest on top.
enum FarthestFirst: HeapOrder {
    static func before(_ a: Scored, _ b: Scored) -> Bool { a.distance > b.distance }
}
