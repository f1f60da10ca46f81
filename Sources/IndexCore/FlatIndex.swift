/// Exact search over row-major vectors: batched distance kernel, bounded heap, no
/// per-candidate allocation.
public enum FlatSearch {
    /// The `k` nearest of `count` vectors in `vectors` (row-major, `dimension` floats each) to
    /// `query`, offered into `topK` with ids from `ids` (row numbers when `ids` is nil).
    /// Rows for which `skip` returns true are left out.
    public static func search(query: [Float], vectors: UnsafeBufferPointer<Float>, dimension: Int,
                              metric: Metric, ids: [UInt64]?, into topK: inout TopK,
                              skip: ((Int) -> Bool)? = nil) {
        let count = vectors.count / dimension
        guard count > 0 else { return }
        let chunk = 1024
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { dist in
            query.withUnsafeBufferPointer { q in
                var start = 0
                while start < count {
                    let n = min(chunk, count - start)
                    Distance.batch(metric, query: q.baseAddress!, base: vectors.baseAddress! + start * dimension,
                                   count: n, dimension: dimension, out: dist.baseAddress!)
                    for i in 0..<n where dist[i] <= topK.threshold {
                        let row = start + i
                        if let skip, skip(row) { continue }
                        topK.offer(Neighbor(id: ids?[row] ?? UInt64(row), distance: dist[i]))
                    }
                    start += n
                }
            }
        }
    }
}
