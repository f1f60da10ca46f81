import IndexCore
import SegmentFormat

/// Rows written but not yet committed: searchable at once through an HNSW graph (exact scan
/// while small), made durable by a commit.
struct Memtable: Sendable {
    let dimension: Int
    let metric: Metric
    private(set) var ids: [UInt64] = []
    private(set) var vectors: [Float] = []
    private(set) var metadata: [Metadata] = []
    private(set) var payloads: [[UInt8]] = []
    private(set) var graph: HNSWIndex

    /// Below this many rows a search scans exactly; the graph is still built for the segment.
    static let exactBelow = 1024

    init(dimension: Int, metric: Metric) {
        self.dimension = dimension
        self.metric = metric
        graph = HNSWIndex(dimension: dimension, metric: metric, parameters: .init(m: 16, efConstruction: 100))
    }

    var isEmpty: Bool { ids.isEmpty }
    var count: Int { ids.count }

    mutating func append(id: UInt64, vector: [Float], metadata m: Metadata, payload: [UInt8]) {
        ids.append(id)
        vectors.append(contentsOf: vector)
        metadata.append(m)
        payloads.append(payload)
        graph.insert(vector, id: id)
    }

    /// The rows as segment contents, laid out as `layout` says.
    func contents(_ layout: SegmentLayout) -> SegmentContents {
        var c = SegmentContents(dimension: dimension, metric: metric.rawValue, ids: ids, vectors: vectors,
                                metadata: metadata.contains { !$0.isEmpty } ? metadata : [],
                                payloads: payloads.contains { !$0.isEmpty } ? payloads : [])
        switch layout {
        case .flat:
            break
        case .graph:
            let g = graph.exportGraph()
            c.graph = GraphLayout(m: g.m, entryPoint: g.entryPoint, maxLevel: g.maxLevel, levels: g.levels,
                                  level0: g.level0, upper: g.upper)
        case .ivf(let nlist):
            // Rows are reordered partition by partition; metadata and payloads follow their rows.
            let ivf = IVFIndex(vectors: vectors, ids: (0..<UInt64(ids.count)).map { $0 }, dimension: dimension,
                               metric: metric, nlist: nlist)
            let order = ivf.ids.map { Int($0) }
            c.ids = order.map { ids[$0] }
            c.vectors = ivf.vectors
            if !c.metadata.isEmpty { c.metadata = order.map { metadata[$0] } }
            if !c.payloads.isEmpty { c.payloads = order.map { payloads[$0] } }
            c.ivf = IVFLayout(centroids: ivf.centroids, offsets: ivf.offsets.map { UInt64($0) })
        }
        return c
    }

    func search(_ query: [Float], k: Int, ef: Int) -> [Neighbor] {
        if count < Self.exactBelow {
            var top = TopK(k: k)
            vectors.withUnsafeBufferPointer { v in
                FlatSearch.search(query: query, vectors: v, dimension: dimension, metric: metric, ids: ids, into: &top)
            }
            return top.sorted()
        }
        return graph.search(query, k: k, ef: ef)
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

    /// The layout for `rows` rows: flat below 2 000, a graph below `ivfThreshold`, IVF above.
    static func choose(rows: Int, ivfThreshold: Int) -> SegmentLayout {
        if rows >= ivfThreshold { return .ivf(nlist: max(1, Int(Double(rows).squareRoot()))) }
        if rows >= 2_000 { return .graph }
        return .flat
    }
}
