// The flat index: exact search over row-major vectors with the batched distance kernel.
internal import CVecgoNative

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

    /// Offers only the rows in `allowed` (below `rows`) into `topK` by distance to `query`:
    /// an exact scan that costs the matching rows, not all of them (a filter matching 1 % reads
    /// 1 % of the vectors). `vector(row)` is row `row`'s vector, `id(row)` its name; rows for
    /// which `skip(row)` is true are left out.
    public static func search(query: UnsafePointer<Float>, allowed: Bitmap, rows: Int, dimension: Int, metric: Metric,
                              into topK: inout TopK, vector: (Int) -> UnsafePointer<Float>, id: (Int) -> UInt64,
                              skip: (Int) -> Bool = { _ in false }) {
        // Rows in two alternating groups: one group's vectors are fetched while the other's are scored.
        let group = 16
        let lines = min((dimension * 4 + 63) / 64, 8)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * group) { pending in
            func score(_ count: Int, from start: Int) {
                for i in 0..<count {
                    let row = pending[start + i]
                    let d = Distance.distance(metric, query, vector(row), dimension)
                    if d <= topK.threshold, !skip(row) { topK.offer(Neighbor(id: id(row), distance: d)) }
                }
            }
            var current = 0, filled = 0, waiting = 0
            allowed.forEachRow(below: rows) { row in
                pending[current * group + filled] = row
                let v = UnsafeRawPointer(vector(row))
                for l in 0..<lines { vecgo_prefetch(v + l * 64) }
                filled += 1
                if filled == group {
                    score(waiting, from: (1 - current) * group)
                    waiting = group
                    current ^= 1
                    filled = 0
                }
            }
            score(waiting, from: (1 - current) * group)
            score(filled, from: current * group)
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
