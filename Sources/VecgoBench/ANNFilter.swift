// `vecgo-bench ann --filter-selectivity S`: filtered search as the planner runs it, against an
// exact scan of the matching rows, for an equality filter and a range filter matching a share S.
import Dispatch
import Foundation
import IndexCore

extension ANNBench {
    struct FilterPoint: Codable {
        var filter: String
        var selectivity: Double
        var matching: Int
        var plan: String
        var plan_kind: String
        var recall: Double
        var qps_1_thread: Double
        var qps_all_threads: Double
        var scan_qps_1_thread: Double
        var scan_qps_all_threads: Double
    }

    struct FilterReport: Codable {
        var index: String
        var rows: Int
        var dimension: Int
        var queries: Int
        var k: Int
        var threads: Int
        var kernel: String
        var build_seconds: Double
        var ef: Int?
        var nprobe: Int?
        var filters: [FilterPoint]
    }

    /// The rows matching each filter: `equality` gives each row one of `round(1/S)` labels at
    /// random and asks for label 0; `range` gives each row a number uniform in [0, 1) and asks
    /// for [0, S).
    static func filterRows(rows n: Int, selectivity s: Double, seed: UInt64) -> [(String, Bitmap)] {
        var state = seed
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let labels = UInt64(max(1, (1 / s).rounded()))
        var equality = Bitmap(count: n), range = Bitmap(count: n)
        for i in 0..<n where next() % labels == 0 { equality.insert(i) }
        for i in 0..<n where Double(next() >> 11) / Double(1 << 53) < s { range.insert(i) }
        return [("equality", equality), ("range", range)]
    }

    func runFiltered(data: [Float], dimension dim: Int, queries qs: [[Float]], hnsw: HNSWIndex?, ivf: IVFIndex?,
                     buildSeconds: Double) throws {
        let clock = ContinuousClock()
        let k = self.k, metric = self.metric, ef = self.ef, nprobe = self.nprobe, threads = self.threads
        let n = data.count / dim
        var points: [FilterPoint] = []
        for s in filterSelectivities {
            for (name, rows) in Self.filterRows(rows: n, selectivity: s, seed: 0xF11 + UInt64(s * 1e6)) {
                // IVF rows are numbered in stored order.
                let stored: Bitmap = ivf.map { ivf in
                    var b = Bitmap(count: n)
                    for (slot, id) in ivf.ids.enumerated() where rows.contains(Int(id)) { b.insert(slot) }
                    return b
                } ?? rows
                let scan: @Sendable ([Float]) -> [UInt64] = { q in
                    var top = TopK(k: k)
                    q.withUnsafeBufferPointer { qp in
                        data.withUnsafeBufferPointer { v in
                            FlatSearch.search(query: qp.baseAddress!, allowed: rows, rows: n, dimension: dim, metric: metric,
                                              into: &top, vector: { v.baseAddress! + $0 * dim }, id: { UInt64($0) })
                        }
                    }
                    return top.sorted().map(\.id)
                }
                let plan: FilterPlan
                let planned: @Sendable ([Float]) -> [UInt64]
                var planner = FilterPlanner()
                switch forcePlan {  // --filter-plan: for calibrating the planner's costs
                case "scan": planner.graphCostPerEf = .infinity; planner.contiguousRowCost = .infinity
                case "index": planner.graphCostPerEf = 0; planner.contiguousRowCost = 0
                default: break
                }
                if let hnsw {
                    plan = planner.plan(hnswRows: n, matching: rows.cardinality, k: k, ef: ef)
                    planned = { q in hnsw.search(q, k: k, plan: plan, allowed: rows).map(\.id) }
                } else if let ivf {
                    plan = planner.plan(ivfRows: n, nlist: ivf.nlist, matching: stored.cardinality, k: k, nprobe: nprobe)
                    planned = { q in ivf.search(q, k: k, plan: plan, allowed: stored).map(\.id) }
                } else {
                    plan = planner.plan(flatRows: n, matching: rows.cardinality)
                    planned = scan
                }
                // One pass over the queries on one thread, and one spread over all threads.
                func once(_ f: @Sendable ([Float]) -> [UInt64]) -> (results: [[UInt64]], single: Double, multi: Double) {
                    let t1 = clock.now
                    let results = qs.map(f)
                    let single = Double(qs.count) / seconds(clock.now - t1)
                    let tn = clock.now
                    DispatchQueue.concurrentPerform(iterations: threads) { w in
                        for i in stride(from: w, to: qs.count, by: threads) { _ = f(qs[i]) }
                    }
                    return (results, single, Double(qs.count) / seconds(clock.now - tn))
                }
                // Planned search and scan alternate, best of five each, so that load from other
                // processes weighs on both alike.
                var exact = once(scan), got = once(planned)
                for _ in 0..<4 {
                    let e = once(scan), g = once(planned)
                    exact.single = max(exact.single, e.single)
                    exact.multi = max(exact.multi, e.multi)
                    got.single = max(got.single, g.single)
                    got.multi = max(got.multi, g.multi)
                }
                let hits = zip(got.results, exact.results).reduce(0) { $0 + Set($1.0).intersection($1.1).count }
                let wanted = exact.results.reduce(0) { $0 + $1.count }
                points.append(FilterPoint(filter: name, selectivity: s, matching: rows.cardinality, plan: plan.description,
                                          plan_kind: plan.kind, recall: wanted == 0 ? 1 : Double(hits) / Double(wanted),
                                          qps_1_thread: got.single, qps_all_threads: got.multi,
                                          scan_qps_1_thread: exact.single, scan_qps_all_threads: exact.multi))
            }
        }
        let report = FilterReport(index: index, rows: n, dimension: dim, queries: qs.count, k: k, threads: threads,
                                  kernel: Distance.kernelName, build_seconds: buildSeconds, ef: hnsw == nil ? nil : ef,
                                  nprobe: ivf == nil ? nil : nprobe, filters: points)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        print("vecgo \(index) filtered: \(n) × \(dim), \(qs.count) queries, k \(k), kernel \(Distance.kernelName), build \(String(format: "%.2f", buildSeconds)) s")
        for p in points {
            print(String(format: "%-8@ %6.3f  recall@%d %.4f  QPS 1 thread %8.0f (scan %8.0f, ×%.2f)  %d threads %8.0f (scan %8.0f, ×%.2f)",
                         p.filter, p.selectivity, k, p.recall, p.qps_1_thread, p.scan_qps_1_thread,
                         p.qps_1_thread / p.scan_qps_1_thread, threads, p.qps_all_threads, p.scan_qps_all_threads,
                         p.qps_all_threads / p.scan_qps_all_threads))
            print("         plan \(p.plan)")
        }
    }
}
