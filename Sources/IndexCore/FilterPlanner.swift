// The filtered-search planner: from how many rows a filter leaves, chooses an exact scan of
// those rows, or the graph / IVF search with the bitmap (its ef or nprobe widened as the filter
// narrows), and says why; and the planned searches of HNSW and IVF indexes.

/// How a filtered search runs, and why: the planner's choice, printed by `vecgo-bench`.
public enum FilterPlan: Sendable, Hashable, CustomStringConvertible {
    /// Exact distances to every allowed row, and only those.
    case scan(Reason)
    /// HNSW search with the bitmap: every node traversed, only allowed ones returned.
    case graph(ef: Int, Reason)
    /// IVF search of the `nprobe` nearest partitions, allowed rows only.
    case ivf(nprobe: Int, Reason)

    /// Why a plan was chosen.
    public struct Reason: Sendable, Hashable, CustomStringConvertible {
        /// Rows the filter allows.
        public var matching: Int
        /// Rows in the index.
        public var rows: Int
        /// Estimated cost of scanning the allowed rows, in distance computations.
        public var scanCost: Double
        /// Estimated cost of the index search (graph or IVF) with the widened ef / nprobe.
        public var indexCost: Double
        /// How much ef / nprobe was widened for the filter (1 when not).
        public var widening: Double
        /// Fewer than `2 k` rows match, or the index has no structure (flat): scanned regardless.
        public var forced: Bool

        /// `matching / rows`.
        public var selectivity: Double { rows == 0 ? 0 : Double(matching) / Double(rows) }

        public var description: String {
            let s = "selectivity \(Self.format(selectivity)) (\(matching) of \(rows) rows)"
            if forced { return s + (rows > 0 && matching < rows ? ", too few rows for an index search" : "") }
            return s + ", cost scan \(Int(scanCost.rounded())) vs index \(Int(indexCost.rounded())), widened ×\(Self.format(widening))"
        }

        static func format(_ x: Double) -> String {
            let r = (x * 1000).rounded() / 1000
            return r == r.rounded() ? String(Int(r)) : String(r)
        }
    }

    /// Why the plan was chosen.
    public var reason: Reason {
        switch self {
        case .scan(let r), .graph(_, let r), .ivf(_, let r): r
        }
    }

    /// `scan`, `graph` or `ivf`.
    public var kind: String {
        switch self {
        case .scan: "scan"
        case .graph: "graph"
        case .ivf: "ivf"
        }
    }

    public var description: String {
        switch self {
        case .scan(let r): "scan: \(r)"
        case .graph(let ef, let r): "graph ef \(ef): \(r)"
        case .ivf(let nprobe, let r): "ivf nprobe \(nprobe): \(r)"
        }
    }
}

/// Chooses how a filtered search runs. Costs are in units of one distance computation of an
/// exact scan over allowed rows; an index search is chosen only when its estimate is lower, so
/// a planned search is never much slower than that scan, and its ef / nprobe grows as
/// `1/√selectivity` so that recall holds as the filter narrows (recall@10 ≥ 0.95 at 50 %, 10 %,
/// 1 % and 0.1 % on the clustered benchmark set, `vecgo-bench ann --filter-selectivity`).
public struct FilterPlanner: Sendable, Hashable {
    /// Distance computations of a graph search per unit of ef, without a filter (measured: about
    /// 30 at m 16 on 100 000 × 128), times how much dearer each is than a scan's (random access
    /// and heap work: about 2×).
    public var graphCostPerEf: Double = 60
    /// Cost of one row of a contiguous IVF partition or centroid scan, relative to a gathered
    /// scan row (batched kernel, sequential memory).
    public var contiguousRowCost: Double = 0.6
    /// Largest widening of ef or nprobe.
    public var maxWidening: Double = 32

    public init() {}

    /// How ef or nprobe widens at `selectivity`: `1/√s`, from 1 (no filter) to ``maxWidening``.
    public func widening(_ selectivity: Double) -> Double {
        guard selectivity > 0 else { return maxWidening }
        return min(maxWidening, max(1, (1 / selectivity).squareRoot()))
    }

    /// The plan for an HNSW index of `rows` nodes when `matching` of them are allowed.
    public func plan(hnswRows rows: Int, matching: Int, k: Int, ef: Int) -> FilterPlan {
        let s = rows == 0 ? 0 : Double(matching) / Double(rows)
        let w = widening(s)
        let wide = max(k, Int((Double(max(ef, k)) * w).rounded(.up)))
        var r = FilterPlan.Reason(matching: matching, rows: rows, scanCost: Double(matching), indexCost: .infinity,
                                  widening: w, forced: true)
        if matching < 2 * k || matching == 0 { return .scan(r) }
        r.forced = false
        // A filtered walk meets about one allowed node per 1/s visited.
        r.indexCost = graphCostPerEf * Double(wide) / max(s, 1e-9)
        return r.indexCost < r.scanCost ? .graph(ef: wide, r) : .scan(r)
    }

    /// The plan for an IVF index of `rows` rows in `nlist` partitions when `matching` are allowed.
    public func plan(ivfRows rows: Int, nlist: Int, matching: Int, k: Int, nprobe: Int) -> FilterPlan {
        let s = rows == 0 ? 0 : Double(matching) / Double(rows)
        let w = widening(s)
        let wide = min(max(nlist, 1), max(1, Int((Double(max(nprobe, 1)) * w).rounded(.up))))
        var r = FilterPlan.Reason(matching: matching, rows: rows, scanCost: Double(matching), indexCost: .infinity,
                                  widening: w, forced: true)
        if matching < 2 * k || matching == 0 { return .scan(r) }
        r.forced = false
        r.indexCost = contiguousRowCost * (Double(nlist) + Double(wide) * Double(rows) / Double(max(nlist, 1)))
        return r.indexCost < r.scanCost ? .ivf(nprobe: wide, r) : .scan(r)
    }

    /// The plan for a flat index: always a scan of the allowed rows.
    public func plan(flatRows rows: Int, matching: Int) -> FilterPlan {
        .scan(.init(matching: matching, rows: rows, scanCost: Double(matching), indexCost: .infinity, widening: 1, forced: true))
    }
}

extension HNSWIndex {
    /// The `k` nearest live rows among `allowed` (by insertion order), nearest first, searched
    /// as `planner` chooses (an exact scan of the allowed rows, or the graph with a widened
    /// `ef`), and the plan. `ef` defaults to the parameters' `efSearch`.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, filter allowed: Bitmap,
                       planner: FilterPlanner = FilterPlanner()) -> (hits: [Neighbor], plan: FilterPlan) {
        let plan = planner.plan(hnswRows: allowed.count, matching: allowed.cardinality, k: k, ef: ef ?? parameters.efSearch)
        return (search(query, k: k, plan: plan, allowed: allowed), plan)
    }

    /// The `k` nearest live rows among `allowed` (all live rows when nil) searched by `plan`; a
    /// graph search that finds fewer than `k` (while more rows are allowed) is completed by the
    /// exact scan.
    public func search(_ query: [Float], k: Int, plan: FilterPlan, allowed: Bitmap?) -> [Neighbor] {
        switch plan {
        case .graph(let ef, let r):
            let hits = search(query, k: k, ef: ef, allowed: allowed)
            return hits.count >= min(k, r.matching) ? hits : exactSearch(query, k: k, allowed: allowed)
        case .scan, .ivf:
            return exactSearch(query, k: k, allowed: allowed)
        }
    }
}

extension IVFIndex {
    /// The `k` nearest rows among `allowed` (by stored row number), nearest first, searched as
    /// `planner` chooses (an exact scan of the allowed rows, or the partitions with a widened
    /// `nprobe`), and the plan.
    public func search(_ query: [Float], k: Int, nprobe: Int, filter allowed: Bitmap,
                       planner: FilterPlanner = FilterPlanner()) -> (hits: [Neighbor], plan: FilterPlan) {
        let plan = planner.plan(ivfRows: ids.count, nlist: nlist, matching: allowed.cardinality, k: k, nprobe: nprobe)
        return (search(query, k: k, plan: plan, allowed: allowed), plan)
    }

    /// The `k` nearest rows among `allowed` searched by `plan`; partitions that hold fewer than
    /// `k` allowed rows are completed by the exact scan.
    public func search(_ query: [Float], k: Int, plan: FilterPlan, allowed: Bitmap) -> [Neighbor] {
        if case .ivf(let nprobe, let r) = plan {
            let hits = search(query, k: k, nprobe: nprobe, allowed: allowed)
            if hits.count >= min(k, r.matching) { return hits }
        }
        var top = TopK(k: k)
        query.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { v in
                let d = dimension
                FlatSearch.search(query: q.baseAddress!, allowed: allowed, rows: ids.count, dimension: d, metric: metric,
                                  into: &top, vector: { v.baseAddress! + $0 * d }, id: { ids[$0] })
            }
        }
        return top.sorted()
    }
}
