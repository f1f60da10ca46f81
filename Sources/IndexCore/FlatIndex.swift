/// Exact search over row-major vectors: batched distance kernel, bounded heap, no
/// per-candidate allocation.
public enum FlatSearch {
    /// Offers the rows of `vectors` (row-major, `dimension` floats each) into `topK` by
    /// distance to `query`; `id(row)` names row `row` (0-based within `vectors`), and rows for
    /// which `skip(row)` is true are left out.
    public static func search(query: UnsafePointer<Float>, vectors: UnsafeBufferPointer<Float>, dimension: Int,
                              metric: Metric, into topK: inout TopK, id: (Int) -> UInt64,
                              skip: (Int) -> Bool = { _ in false }) {
        let count = vectors.count / dimension
        guard count > 0 else { return }
        let chunk = 1024
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { dist in
            var start = 0
            while start < count {
                let n = min(chunk, count - start)
                Distance.batch(metric, query: query, base: vectors.baseAddress! + start * dimension,
                               count: n, dimension: dimension, out: dist.baseAddress!)
                for i in 0..<n where dist[i] <= topK.threshold {
                    let row = start + i
                    if skip(row) { continue }
                    topK.offer(Neighbor(id: id(row), distance: dist[i]))
                }
                start += n
            }
        }
    }

    /// The same over arrays: ids from `ids` (row numbers when nil).
    public static func search(query: [Float], vectors: UnsafeBufferPointer<Float>, dimension: Int,
                              metric: Metric, ids: [UInt64]?, into topK: inout TopK) {
        query.withUnsafeBufferPointer { q in
            if let ids {
                ids.withUnsafeBufferPointer { idp in
                    search(query: q.baseAddress!, vectors: vectors, dimension: dimension, metric: metric, into: &topK,
                           id: { idp[$0] })
                }
            } else {
                search(query: q.baseAddress!, vectors: vectors, dimension: dimension, metric: metric, into: &topK,
                       id: { UInt64($0) })
            }
        }
    }
}
