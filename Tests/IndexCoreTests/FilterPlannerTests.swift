// The filtered-search planner: its choice at each selectivity, recall of planned searches
// against the exact filtered answer (equality and range filters), and that no planned search
// returns a row outside the filter.
import IndexCore
import Testing
import _VecgoTestSupport

/// Rows matching an equality filter (one of `round(1/s)` labels) and a range filter (a number
/// uniform in [0, 1) below `s`), over `n` rows.
private func filters(_ n: Int, selectivity s: Double, seed: UInt64) -> [(String, Bitmap)] {
    var rng = SeededRNG(seed: seed)
    let labels = max(1, Int((1 / s).rounded()))
    var eq = Bitmap(count: n), range = Bitmap(count: n)
    for i in 0..<n where Int.random(in: 0..<labels, using: &rng) == 0 { eq.insert(i) }
    for i in 0..<n where Double.random(in: 0..<1, using: &rng) < s { range.insert(i) }
    return [("equality", eq), ("range", range)]
}

/// The exact `k` nearest rows of `data` among `allowed`, by a full scan that skips the rest.
private func exactFiltered(_ data: [[Float]], _ q: [Float], k: Int, allowed: Bitmap) -> [UInt64] {
    var top = TopK(k: k)
    let flat = data.flatMap { $0 }
    flat.withUnsafeBufferPointer {
        FlatSearch.search(query: q, vectors: $0, dimension: q.count, metric: .l2, into: &top, id: { UInt64($0) },
                          skip: { !allowed.contains($0) })
    }
    return top.sorted().map(\.id)
}

extension FlatSearch {
    fileprivate static func search(query: [Float], vectors: UnsafeBufferPointer<Float>, dimension: Int, metric: Metric,
                                   into top: inout TopK, id: (Int) -> UInt64, skip: (Int) -> Bool) {
        query.withUnsafeBufferPointer {
            search(query: $0.baseAddress!, vectors: vectors, dimension: dimension, metric: metric, into: &top, id: id, skip: skip)
        }
    }
}

/// A planner that always prefers the index (to test the widened graph and IVF searches on a
/// set small enough that the default planner would scan).
private var indexFirst: FilterPlanner {
    var p = FilterPlanner()
    p.graphCostPerEf = 1e-6
    p.contiguousRowCost = 1e-9
    return p
}

@Suite struct FilterPlannerTests {
    /// On 100 000 rows (k 10, ef 64, nprobe 8 of 316): the graph or IVF with a widened setting
    /// while the filter is broad, a scan of the matching rows once it is narrow, and a scan
    /// whenever fewer than 2k rows match.
    @Test func choiceAtEachSelectivity() {
        let planner = FilterPlanner()
        let n = 100_000
        func hnsw(_ s: Double) -> FilterPlan { planner.plan(hnswRows: n, matching: Int(Double(n) * s), k: 10, ef: 64) }
        func ivf(_ s: Double) -> FilterPlan { planner.plan(ivfRows: n, nlist: 316, matching: Int(Double(n) * s), k: 10, nprobe: 8) }
        #expect(hnsw(1).kind == "graph")
        if case .graph(let ef, _) = hnsw(1) { #expect(ef == 64) }
        if case .graph(let ef, let r) = hnsw(0.5) {
            #expect(ef > 64 && r.widening > 1 && r.indexCost < r.scanCost)
        } else {
            Issue.record("50 %: \(hnsw(0.5))")
        }
        #expect(hnsw(0.1).kind == "scan")
        #expect(hnsw(0.01).kind == "scan" && hnsw(0.001).kind == "scan")
        if case .ivf(let nprobe, _) = ivf(0.5) { #expect(nprobe > 8 && nprobe < 316) } else { Issue.record("50 %: \(ivf(0.5))") }
        if case .ivf(let nprobe, _) = ivf(0.1) { #expect(nprobe > 16) } else { Issue.record("10 %: \(ivf(0.1))") }
        #expect(ivf(0.01).kind == "scan" && ivf(0.001).kind == "scan")
        // Fewer than 2k matches: scanned, whatever the costs say.
        let few = indexFirst.plan(hnswRows: n, matching: 19, k: 10, ef: 64)
        #expect(few.kind == "scan" && few.reason.forced)
        #expect(indexFirst.plan(ivfRows: n, nlist: 316, matching: 19, k: 10, nprobe: 8).kind == "scan")
        #expect(planner.plan(flatRows: n, matching: 50_000).kind == "scan")
        // The reason carries the numbers the choice was made on.
        let r = hnsw(0.01).reason
        #expect(r.matching == 1000 && r.rows == n && r.scanCost == 1000 && r.indexCost > r.scanCost)
        #expect(hnsw(0.01).description.hasPrefix("scan: selectivity 0.01 (1000 of 100000 rows)"))
    }

    /// Planned HNSW search (default planner and one that prefers the graph) reaches recall@10
    /// ≥ 0.95 against the exact filtered answer at 50 %, 10 %, 1 % and 0.1 %, equality and range.
    @Test func hnswFilteredRecall() {
        let n = 3000
        let data = clustered(n, dim: 16, seed: 21)
        let queries = clustered(40, dim: 16, seed: 22)
        let h = HNSWIndex(dimension: 16, metric: .l2, parameters: .init(m: 12, efConstruction: 100))
        for (i, v) in data.enumerated() { h.insert(v, id: UInt64(i)) }
        for s in [0.5, 0.1, 0.01, 0.001] {
            for (name, allowed) in filters(n, selectivity: s, seed: UInt64(s * 1e4)) {
                for planner in [FilterPlanner(), indexFirst] {
                    var got: [[UInt64]] = [], want: [[UInt64]] = []
                    var plan: FilterPlan?
                    for q in queries {
                        let r = h.search(q, k: 10, ef: 32, filter: allowed, planner: planner)
                        got.append(r.hits.map(\.id))
                        want.append(exactFiltered(data, q, k: 10, allowed: allowed))
                        plan = r.plan
                    }
                    let rc = recall(got, want)
                    #expect(rc >= 0.95, "\(name) \(s): recall \(rc), plan \(plan!)")
                }
            }
        }
    }

    /// The same for IVF, with the planner widening nprobe.
    @Test func ivfFilteredRecall() {
        let n = 4000
        let data = clustered(n, dim: 16, seed: 31)
        let queries = clustered(40, dim: 16, seed: 32)
        let ivf = IVFIndex(vectors: data.flatMap { $0 }, ids: (0..<n).map(UInt64.init), dimension: 16, metric: .l2, nlist: 64)
        for s in [0.5, 0.1, 0.01, 0.001] {
            for (name, byID) in filters(n, selectivity: s, seed: 7 + UInt64(s * 1e4)) {
                var stored = Bitmap(count: n)  // IVF rows are numbered in stored order
                for (slot, id) in ivf.ids.enumerated() where byID.contains(Int(id)) { stored.insert(slot) }
                for planner in [FilterPlanner(), indexFirst] {
                    var got: [[UInt64]] = [], want: [[UInt64]] = []
                    for q in queries {
                        got.append(ivf.search(q, k: 10, nprobe: 4, filter: stored, planner: planner).hits.map(\.id))
                        want.append(exactFiltered(data, q, k: 10, allowed: byID))
                    }
                    let plan = ivf.search(queries[0], k: 10, nprobe: 4, filter: stored, planner: planner).plan
                    if planner == indexFirst && byID.cardinality >= 20 { #expect(plan.kind == "ivf") }
                    #expect(recall(got, want) >= 0.95, "\(name) \(s): plan \(plan)")
                }
            }
        }
    }

    /// Whatever the plan, every hit is an allowed live row, and min(k, matching) come back.
    @Test func plannedSearchNeverReturnsDisallowedRows() {
        let n = 2000
        let data = clustered(n, dim: 8, seed: 41)
        let h = HNSWIndex(dimension: 8, metric: .l2, parameters: .init(m: 8, efConstruction: 64))
        for (i, v) in data.enumerated() { h.insert(v, id: UInt64(i)) }
        for i in stride(from: 0, to: n, by: 7) { h.markDeleted(id: UInt64(i)) }
        let ivf = IVFIndex(vectors: data.flatMap { $0 }, ids: (0..<n).map(UInt64.init), dimension: 8, metric: .l2, nlist: 32)
        var rng = SeededRNG(seed: 42)
        for s in [0.9, 0.3, 0.05, 0.004] {
            var allowed = Bitmap(count: n)
            for i in 0..<n where Double.random(in: 0..<1, using: &rng) < s { allowed.insert(i) }
            let live = (0..<n).filter { allowed.contains($0) && $0 % 7 != 0 }.count
            for planner in [FilterPlanner(), indexFirst] {
                for q in data.prefix(25) {
                    let hits = h.search(q, k: 10, filter: allowed, planner: planner).hits
                    #expect(hits.allSatisfy { allowed.contains(Int($0.id)) && $0.id % 7 != 0 })
                    #expect(hits.count == min(10, live))
                    let ivfHits = ivf.search(q, k: 10, nprobe: 2, filter: allowed, planner: planner).hits
                    let slotOf = Dictionary(uniqueKeysWithValues: ivf.ids.enumerated().map { ($1, $0) })
                    #expect(ivfHits.allSatisfy { allowed.contains(slotOf[$0.id]!) })
                    #expect(ivfHits.count == min(10, allowed.cardinality))
                }
            }
        }
    }

    /// The scan of allowed rows equals a full scan that skips the others, and visits rows in order.
    @Test func scanOfAllowedRowsEqualsFullScan() {
        let n = 1037
        let data = clustered(n, dim: 9, seed: 51)
        var rng = SeededRNG(seed: 52)
        var allowed = Bitmap(count: n)
        for i in 0..<n where Bool.random(using: &rng) && i % 3 != 0 { allowed.insert(i) }
        var rows: [Int] = []
        allowed.forEachRow { rows.append($0) }
        #expect(rows == (0..<n).filter { allowed.contains($0) })
        var capped: [Int] = []
        allowed.forEachRow(below: 500) { capped.append($0) }
        #expect(capped == rows.filter { $0 < 500 })
        let flat = data.flatMap { $0 }
        for q in data.prefix(10) {
            var top = TopK(k: 10)
            q.withUnsafeBufferPointer { qp in
                flat.withUnsafeBufferPointer { v in
                    FlatSearch.search(query: qp.baseAddress!, allowed: allowed, rows: n, dimension: 9, metric: .l2, into: &top,
                                      vector: { v.baseAddress! + $0 * 9 }, id: { UInt64($0) })
                }
            }
            #expect(top.sorted().map(\.id) == exactFiltered(data, q, k: 10, allowed: allowed))
        }
    }
}
