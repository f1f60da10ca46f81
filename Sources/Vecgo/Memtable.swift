import IndexCore
import SegmentFormat

/// Rows written but not yet committed: searchable at once, made durable by a commit.
struct Memtable: Sendable {
    let dimension: Int
    private(set) var ids: [UInt64] = []
    private(set) var vectors: [Float] = []
    private(set) var metadata: [Metadata] = []
    private(set) var payloads: [[UInt8]] = []

    init(dimension: Int) { self.dimension = dimension }

    var isEmpty: Bool { ids.isEmpty }
    var count: Int { ids.count }

    mutating func append(id: UInt64, vector: [Float], metadata m: Metadata, payload: [UInt8]) {
        ids.append(id)
        vectors.append(contentsOf: vector)
        metadata.append(m)
        payloads.append(payload)
    }

    /// The rows as segment contents (metadata and payload columns dropped when all empty).
    func contents(metric: Metric) -> SegmentContents {
        SegmentContents(dimension: dimension, metric: metric.rawValue, ids: ids, vectors: vectors,
                        metadata: metadata.contains { !$0.isEmpty } ? metadata : [],
                        payloads: payloads.contains { !$0.isEmpty } ? payloads : [])
    }

    func search(_ query: [Float], k: Int, metric: Metric) -> [Neighbor] {
        var top = TopK(k: k)
        vectors.withUnsafeBufferPointer { v in
            FlatSearch.search(query: query, vectors: v, dimension: dimension, metric: metric, ids: ids, into: &top)
        }
        return top.sorted()
    }
}
