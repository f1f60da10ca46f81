internal import CVecgoNative
import Foundation
import Synchronization

/// A hierarchical navigable small-world graph (Malkov & Yashunin) over float32 vectors.
///
/// Memory layout follows hnswlib: vectors in one contiguous buffer; level-0 links in one
/// buffer of `2M + 1` slots per node (count, then neighbours); upper-level links per node.
/// Searches run concurrently with each other and interleave safely with one writer's inserts
/// (a readers-writer lock); deleted rows are marked, traversed and never returned.
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
    private var capacity = 0
    private(set) var nodeCount = 0
    private var vectors: UnsafeMutablePointer<Float>
    private(set) var level0: UnsafeMutablePointer<UInt32>
    private(set) var upper: [[UInt32]] = []   // per node: (level-1) * (m + 1) slots
    private(set) var levels: [UInt8] = []
    private var externalIDs: [UInt64] = []
    private var deleted: [Bool] = []
    private var deletedCount = 0
    private(set) var entryPoint: UInt32 = 0
    private(set) var maxLevel = -1
    private var rng: SplitMix64
    let lock = ReadWriteLock()
    private let visitedPool = Mutex<[VisitedSet]>([])  // VisitedSet is used by one search at a time
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
        vectors = .allocate(capacity: 1)
        level0 = .allocate(capacity: 1)
        kernel = metric == .l2 ? vecgo_l2sq_fn() : vecgo_dot_fn()
    }

    deinit {
        vectors.deallocate()
        level0.deallocate()
    }

    /// Live (not deleted) rows.
    public var count: Int { lock.read { nodeCount - deletedCount } }

    /// Bytes held by vectors and links (not counting Swift array headers).
    public var memoryBytes: Int {
        lock.read {
            nodeCount * (dimension * 4 + (m0 + 1) * 4 + 8 + 2) + upper.reduce(0) { $0 + $1.count * 4 }
        }
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

    @inline(__always) private func vector(_ i: UInt32) -> UnsafeMutablePointer<Float> { vectors + Int(i) * dimension }
    @inline(__always) private func links0(_ i: UInt32) -> UnsafeMutablePointer<UInt32> { level0 + Int(i) * (m0 + 1) }

    private func grow(to newCapacity: Int) {
        let v = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * dimension)
        v.update(from: vectors, count: nodeCount * dimension)
        vectors.deallocate()
        vectors = v
        let l = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity * (m0 + 1))
        l.update(from: level0, count: nodeCount * (m0 + 1))
        level0.deallocate()
        level0 = l
        capacity = newCapacity
    }

    func load(vectors v: [Float], ids: [UInt64], graph: HNSWGraph) {
        lock.write {
            grow(to: max(ids.count, 1))
            v.withUnsafeBufferPointer { vectors.update(from: $0.baseAddress!, count: v.count) }
            graph.level0.withUnsafeBufferPointer { level0.update(from: $0.baseAddress!, count: graph.level0.count) }
            nodeCount = ids.count
            upper = graph.upper
            levels = graph.levels
            externalIDs = ids
            deleted = [Bool](repeating: false, count: ids.count)
            entryPoint = graph.entryPoint
            maxLevel = graph.maxLevel
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
        links0(node).pointee = 0
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
        let visited = takeVisited()
        defer { returnVisited(visited) }
        var candidates = MinHeap(capacity: parameters.efConstruction * 4)
        var results = MaxHeap(capacity: parameters.efConstruction + 1)
        for l in stride(from: min(level, maxLevel), through: 0, by: -1) {
            searchLayer(q, entry: current, entryDistance: currentDistance, ef: parameters.efConstruction, level: l,
                        visited: visited, candidates: &candidates, results: &results)
            var found = results.drainAscending()
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

    /// The ef nearest nodes on `level`. With `allowed`, every node is traversed but only
    /// allowed ones enter the results (filtered graph search).
    private func searchLayer(_ q: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int, level: Int,
                             visited: VisitedSet, candidates: inout MinHeap, results: inout MaxHeap,
                             allowed: Bitmap? = nil) {
        if let allowed {
            searchFiltered(q, entry: entry, entryDistance: entryDistance, ef: ef, visited: visited, candidates: &candidates,
                           results: &results, allowed: allowed)
            return
        }
        visited.reset(nodeCount)
        candidates.removeAll()
        results.removeAll()
        _ = visited.insert(entry)
        candidates.push(Scored(distance: entryDistance, id: entry))
        results.push(Scored(distance: entryDistance, id: entry))
        while let c = candidates.popMin() {
            if results.count >= ef && c.distance > results.top.distance { break }
            if level == 0 {
                let p = links0(c.id)
                let n = Int(p.pointee)
                if n > 0 { vecgo_prefetch(vector(p[1])) }
                for i in 0..<n {
                    let nb = p[1 + i]
                    if i + 1 < n { vecgo_prefetch(vector(p[2 + i])) }
                    if visited.insert(nb) {
                        let d = distance(q, vector(nb))
                        if results.count < ef || d < results.top.distance {
                            candidates.push(Scored(distance: d, id: nb))
                            results.push(Scored(distance: d, id: nb))
                            if results.count > ef { _ = results.popMax() }
                        }
                    }
                }
            } else {
                for nb in neighbors(c.id, level: level) where visited.insert(nb) {
                    let d = distance(q, vector(nb))
                    if results.count < ef || d < results.top.distance {
                        candidates.push(Scored(distance: d, id: nb))
                        results.push(Scored(distance: d, id: nb))
                        if results.count > ef { _ = results.popMax() }
                    }
                }
            }
        }
    }

    /// Level-0 search where only `allowed` nodes count as results; the walk continues until the
    /// nearest unexplored candidate is farther than the ef-th allowed result.
    private func searchFiltered(_ q: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int, visited: VisitedSet,
                                candidates: inout MinHeap, results: inout MaxHeap, allowed: Bitmap) {
        visited.reset(nodeCount)
        candidates.removeAll()
        results.removeAll()
        _ = visited.insert(entry)
        candidates.push(Scored(distance: entryDistance, id: entry))
        if allowed.contains(Int(entry)) { results.push(Scored(distance: entryDistance, id: entry)) }
        while let c = candidates.popMin() {
            if results.count >= ef && c.distance > results.top.distance { break }
            let p = links0(c.id)
            for i in 0..<Int(p.pointee) {
                let nb = p[1 + i]
                guard visited.insert(nb) else { continue }
                let d = distance(q, vector(nb))
                if results.count < ef || d < results.top.distance {
                    candidates.push(Scored(distance: d, id: nb))
                    if allowed.contains(Int(nb)) {
                        results.push(Scored(distance: d, id: nb))
                        if results.count > ef { _ = results.popMax() }
                    }
                }
            }
        }
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
                let visited = takeVisited()
                defer { returnVisited(visited) }
                var candidates = MinHeap(capacity: ef * 4)
                var results = MaxHeap(capacity: ef + 1)
                let want = deletedCount > 0 ? ef + min(deletedCount, ef) : ef
                searchLayer(q, entry: current, entryDistance: currentDistance, ef: want, level: 0,
                            visited: visited, candidates: &candidates, results: &results, allowed: allowed)
                var out: [Neighbor] = []
                out.reserveCapacity(k)
                for s in results.drainAscending() where !deleted[Int(s.id)] {
                    out.append(Neighbor(id: externalIDs[Int(s.id)], distance: s.distance))
                    if out.count == k { break }
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
            query.withUnsafeBufferPointer { q in
                FlatSearch.search(query: q.baseAddress!, vectors: UnsafeBufferPointer(start: vectors, count: nodeCount * dimension),
                                  dimension: dimension, metric: metric, into: &top, id: { externalIDs[$0] },
                                  skip: { deleted[$0] || !(allowed?.contains($0) ?? true) })
            }
            return top.sorted()
        }
    }

    /// The stored vector of row `row` (insertion order).
    public func vector(row: Int) -> [Float] {
        lock.read {
            precondition(row >= 0 && row < nodeCount)
            return Array(UnsafeBufferPointer(start: vectors + row * dimension, count: dimension))
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

    private func takeVisited() -> VisitedSet {
        visitedPool.withLock { $0.popLast() } ?? VisitedSet()
    }

    private func returnVisited(_ v: VisitedSet) {
        visitedPool.withLock { $0.append(v) }
    }
}

/// A candidate: a node and its distance to the query.
struct Scored {
    var distance: Float
    var id: UInt32
}

/// Visited marks with a generation counter: O(1) reset, no bounds or uniqueness checks on
/// the hot path. Owned by one search at a time (taken from and returned to a pool).
final class VisitedSet: @unchecked Sendable {
    private var marks: UnsafeMutablePointer<UInt16>
    private var capacity = 0
    private var generation: UInt16 = 0

    init() { marks = .allocate(capacity: 1) }
    deinit { marks.deallocate() }

    func reset(_ n: Int) {
        if capacity < n {
            let newCapacity = max(n, capacity * 2)
            marks.deallocate()
            marks = .allocate(capacity: newCapacity)
            marks.initialize(repeating: 0, count: newCapacity)
            capacity = newCapacity
            generation = 0
        }
        generation &+= 1
        if generation == 0 {
            marks.update(repeating: 0, count: capacity)
            generation = 1
        }
    }

    /// Marks `i`; returns true when it was not yet marked.
    @inline(__always)
    func insert(_ i: UInt32) -> Bool {
        if marks[Int(i)] == generation { return false }
        marks[Int(i)] = generation
        return true
    }
}

/// A binary min-heap of candidates.
struct MinHeap {
    private var items: [Scored] = []
    init(capacity: Int) { items.reserveCapacity(capacity) }
    var count: Int { items.count }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }
    mutating func push(_ s: Scored) {
        items.append(s)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) >> 1
                if h[p].distance <= h[i].distance { break }
                h.swapAt(p, i)
                i = p
            }
        }
    }
    mutating func popMin() -> Scored? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items.withUnsafeMutableBufferPointer { h in
                h[0] = last
                var i = 0
                let n = h.count
                while true {
                    let l = 2 * i + 1
                    if l >= n { break }
                    let r = l + 1
                    let c = r < n && h[r].distance < h[l].distance ? r : l
                    if h[i].distance <= h[c].distance { break }
                    h.swapAt(i, c)
                    i = c
                }
            }
        }
        return top
    }
}

/// A binary max-heap of results (the worst on top).
struct MaxHeap {
    private var items: [Scored] = []
    init(capacity: Int) { items.reserveCapacity(capacity) }
    var count: Int { items.count }
    var top: Scored { items[0] }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }
    mutating func push(_ s: Scored) {
        items.append(s)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) >> 1
                if h[p].distance >= h[i].distance { break }
                h.swapAt(p, i)
                i = p
            }
        }
    }
    mutating func popMax() -> Scored? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items.withUnsafeMutableBufferPointer { h in
                h[0] = last
                var i = 0
                let n = h.count
                while true {
                    let l = 2 * i + 1
                    if l >= n { break }
                    let r = l + 1
                    let c = r < n && h[r].distance > h[l].distance ? r : l
                    if h[i].distance >= h[c].distance { break }
                    h.swapAt(i, c)
                    i = c
                }
            }
        }
        return top
    }
    /// Empties the heap, returning its items nearest first.
    mutating func drainAscending() -> [Scored] {
        let out = items.sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        items.removeAll(keepingCapacity: true)
        return out
    }
}

/// SplitMix64: a small, fast, seedable generator for level draws.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A pthread readers-writer lock.
final class ReadWriteLock: @unchecked Sendable {
    /// Allocated once: a pthread lock must not move, and `&` on a stored property does not
    /// promise a stable address.
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>
    init() {
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }
    deinit {
        pthread_rwlock_destroy(rw)
        rw.deinitialize(count: 1)
        rw.deallocate()
    }
    func read<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
    func write<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
}

/// A graph's links, node `i` being the `i`-th inserted row: what a segment stores so a reader
/// loads the graph without rebuilding it.
public struct HNSWGraph: Sendable, Equatable {
    /// Links per node on upper levels (level 0 holds up to `2m`).
    public var m: Int
    /// The entry node.
    public var entryPoint: UInt32
    /// The top level (−1 when empty).
    public var maxLevel: Int
    /// Each node's level.
    public var levels: [UInt8]
    /// Level-0 links: per node `2m + 1` slots, a count then the neighbours.
    public var level0: [UInt32]
    /// Upper links of each node: `level × (m + 1)` slots.
    public var upper: [[UInt32]]

    public init(m: Int, entryPoint: UInt32, maxLevel: Int, levels: [UInt8], level0: [UInt32], upper: [[UInt32]]) {
        self.m = m
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.levels = levels
        self.level0 = level0
        self.upper = upper
    }
}

extension HNSWIndex {
    /// The graph's links, for storing beside the vectors.
    public func exportGraph() -> HNSWGraph {
        lock.read {
            HNSWGraph(m: m, entryPoint: entryPoint, maxLevel: maxLevel, levels: levels,
                      level0: Array(UnsafeBufferPointer(start: level0, count: nodeCount * (m0 + 1))), upper: upper)
        }
    }

    /// Rebuilds an index from stored vectors, ids and links without running inserts.
    ///
    /// The caller has checked the graph (every link in range, counts within `2m`/`m`), as the
    /// segment decoder does.
    public convenience init(dimension: Int, metric: Metric, parameters: Parameters, vectors: [Float], ids: [UInt64],
                            graph: HNSWGraph) {
        var p = parameters
        p.m = graph.m
        self.init(dimension: dimension, metric: metric, parameters: p)
        precondition(vectors.count == ids.count * dimension && graph.levels.count == ids.count
                     && graph.level0.count == ids.count * (2 * graph.m + 1))
        load(vectors: vectors, ids: ids, graph: graph)
    }
}
