// Batched queries: many queries searched at once, their distances computed tile by tile
// (a block of queries × a packed block of rows, by the C micro-kernel) on all cores, for flat
// and IVF indexes. The results equal those of one search per query.
internal import CVecgoNative
import Dispatch
import Foundation
import Synchronization

/// Searches many queries at once. Each block of rows is read once per block of queries (rather
/// than once per query), packed for a register-blocked kernel; workers take blocks of rows
/// (flat) or partitions (IVF) and keep their own heaps, merged at the end. Candidates are
/// ranked by the kernel (for L2 by ‖q‖² + ‖x‖² − 2q·x), then the best `k + 8` are re-ranked with
/// the single-query kernels, so results match ``FlatSearch`` and ``IVFIndex/search(_:k:nprobe:rerank:allowed:)``
/// row for row (up to ties closer than float rounding).
public enum BatchSearch {
    /// Candidates kept beyond `k` and re-ranked exactly, so the kernel's rounding (which differs
    /// from the single-query kernels') cannot change which rows come back.
    static let margin = 8

    /// The `k` nearest rows of `vectors` to each query, nearest first, named by row number.
    ///
    /// - Parameters:
    ///   - queries: `n × dimension` floats, row-major (cosine: already normalised).
    ///   - vectors: the rows, row-major, `dimension` floats each.
    ///   - threads: workers (nil: every core).
    /// - Returns: one list per query, as ``FlatSearch/search(query:vectors:dimension:metric:ids:into:)`` gives.
    public static func flat(queries: [Float], vectors: UnsafeBufferPointer<Float>, dimension: Int, metric: Metric, k: Int,
                            threads: Int? = nil) -> [[Neighbor]] {
        precondition(dimension > 0 && k > 0 && queries.count % dimension == 0 && vectors.count % dimension == 0)
        let nq = queries.count / dimension, rows = vectors.count / dimension
        guard nq > 0 else { return [] }
        guard rows > 0 else { return [[Neighbor]](repeating: [], count: nq) }
        let keep = min(k + margin, rows)
        let block = TileScanner.rowBlock(dimension)
        let blocks = (rows + block - 1) / block
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, blocks))
        let qnorms = metric == .l2 ? norms(queries, dimension) : []
        let partial = queries.withUnsafeBufferPointer { q in
            qnorms.withUnsafeBufferPointer { qn in
                Self.parallel(workers: workers, items: blocks, queries: nq, keep: keep) { scanner, tops, b in
                    let lo = b * block, hi = min(rows, lo + block)
                    scanner.scan(queries: q.baseAddress!, qnorms: qn.baseAddress, count: nq, queryIndex: nil,
                                 rows: vectors.baseAddress! + lo * dimension, rowCount: hi - lo, firstRow: lo, dimension: dimension,
                                 metric: metric, into: tops)
                }
            }
        }
        return finish(partial, queries: queries, k: k, keep: keep, dimension: dimension, metric: metric,
                      vector: { vectors.baseAddress! + $0 * dimension }, id: { UInt64($0) })
    }

    /// Runs `body(scanner, tops, item)` for items `0 ..< items` on `workers` threads, each worker
    /// with its own scanner and heaps (one per query, `keep` each); returns every worker's heaps.
    static func parallel(workers: Int, items: Int, queries nq: Int, keep: Int,
                         _ body: (inout TileScanner, UnsafeMutablePointer<TopK>, Int) -> Void) -> [[TopK]] {
        let results = UnsafeMutableBufferPointer<[TopK]>.allocate(capacity: workers)
        results.initialize(repeating: [])
        defer { results.deinitialize().deallocate() }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body, results = results
            // Each worker writes only its own slot of `results`.
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var tops = [TopK](repeating: TopK(k: keep), count: nq)
                var scanner = TileScanner()
                tops.withUnsafeMutableBufferPointer { t in
                    while true {
                        let item = next.add(1, ordering: .relaxed).oldValue
                        guard item < items else { break }
                        body(&scanner, t.baseAddress!, item)
                    }
                }
                results[w] = tops
            }
        }
        return Array(results)
    }

    /// Merges the workers' heaps per query and re-ranks the survivors with the single-query
    /// kernel: the `k` nearest, nearest first, named by `id(row)`.
    static func finish(_ partial: [[TopK]], queries: [Float], k: Int, keep: Int, dimension: Int, metric: Metric,
                       vector: (Int) -> UnsafePointer<Float>, id: (Int) -> UInt64) -> [[Neighbor]] {
        let nq = queries.count / dimension
        return queries.withUnsafeBufferPointer { q in
            (0..<nq).map { i in
                var merged = TopK(k: keep)
                for w in partial { for n in w[i].sorted() { merged.offer(n) } }
                var exact = TopK(k: k)
                for n in merged.sorted() {
                    let row = Int(n.id)
                    exact.offer(Neighbor(id: id(row), distance: Distance.distance(metric, q.baseAddress! + i * dimension,
                                                                                   vector(row), dimension)))
                }
                return exact.sorted()
            }
        }
    }

    /// The batch kernel at `level` (0 portable, 1 AVX2+FMA, 2 AVX-512; capped at what this CPU
    /// has): distances of `queries` (row-major) to `rows` (row-major), `queries × rows` floats
    /// row by row, and the level used. For tests comparing every implementation.
    @_spi(Testing)
    public static func tileDistances(_ metric: Metric, level: Int, queries: [Float], rows: [Float],
                                     dimension: Int) -> (distances: [Float], level: Int) {
        let nq = queries.count / dimension, n = rows.count / dimension
        var packed = [Float](repeating: 0, count: vecgo_tile_packed_floats(n, dimension))
        var out = [Float](repeating: .nan, count: nq * n)
        let qn = norms(queries, dimension), xn = norms(rows, dimension)
        let mode: Int32 = metric == .l2 ? 0 : (metric == .dot ? 1 : 2)
        rows.withUnsafeBufferPointer { r in
            packed.withUnsafeMutableBufferPointer { vecgo_tile_pack(r.baseAddress!, n, dimension, $0.baseAddress!) }
        }
        let used = packed.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                vecgo_tile_distances_at_level(Int32(level), mode, queries, qn, nq, dimension, p.baseAddress!, xn, n,
                                              o.baseAddress!, n)
            }
        }
        return (out, Int(used))
    }

    /// Squared norms of the rows of `v`.
    static func norms(_ v: [Float], _ dimension: Int) -> [Float] {
        var out = [Float](repeating: 0, count: v.count / dimension)
        v.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { vecgo_tile_norms(p.baseAddress!, $0.count, dimension, $0.baseAddress!) }
        }
        return out
    }
}

extension IVFIndex {
    /// The `k` nearest rows to each query among its `nprobe` nearest partitions, nearest first:
    /// the answers of ``search(_:k:nprobe:rerank:allowed:)`` (float32, no filter), computed for
    /// all queries at once. Partitions are the unit of work: each is packed once and every query
    /// probing it is scanned against it in tiles.
    ///
    /// - Parameters:
    ///   - queries: `n × dimension` floats, row-major (cosine: already normalised).
    ///   - threads: workers (nil: every core).
    public func search(batch queries: [Float], k: Int, nprobe: Int,
                       threads: Int? = nil) -> [[Neighbor]] {
        let d = dimension
        precondition(k > 0 && queries.count % d == 0)
        let nq = queries.count / d, rows = ids.count
        guard nq > 0 else { return [] }
        guard rows > 0 else { return [[Neighbor]](repeating: [], count: nq) }
        let lists = centroids.isEmpty ? 1 : centroids.count / d
        let metric = self.metric, offsets = self.offsets, ids = self.ids
        // Each query's partitions, found by the same batch kernel over the centroids.
        let probes: [[Int]] = centroids.isEmpty ? [[Int]](repeating: [0], count: nq)
            : centroids.withUnsafeBufferPointer {
                BatchSearch.flat(queries: queries, vectors: $0, dimension: d, metric: metric, k: min(max(nprobe, 1), lists),
                                 threads: threads).map { $0.map { Int($0.id) } }
            }
        var members = [[Int32]](repeating: [], count: lists)
        for (qi, ps) in probes.enumerated() { for p in ps { members[p].append(Int32(qi)) } }
        // Largest partitions first, so no worker is left with a big one at the end.
        let cost: [Int] = (0..<lists).map { p in members[p].count * (offsets[p + 1] - offsets[p]) }
        let work: [Int] = (0..<lists).filter { cost[$0] > 0 }.sorted { cost[$0] > cost[$1] }
        let keep = min(k + BatchSearch.margin, rows)
        let partial = queries.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { v in
                BatchSearch.parallel(workers: max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, work.count)), items: work.count, queries: nq, keep: keep) { scanner, tops, item in
                    let p = work[item], lo = offsets[p], hi = offsets[p + 1]
                    let qs = members[p]
                    var gathered = [Float](repeating: 0, count: qs.count * d)
                    for (i, qi) in qs.enumerated() {
                        for j in 0..<d { gathered[i * d + j] = q[Int(qi) * d + j] }
                    }
                    let gn = metric == .l2 ? BatchSearch.norms(gathered, d) : []
                    gathered.withUnsafeBufferPointer { g in
                        gn.withUnsafeBufferPointer { n in
                            qs.withUnsafeBufferPointer { qi in
                                scanner.scan(queries: g.baseAddress!, qnorms: n.baseAddress, count: qs.count, queryIndex: qi.baseAddress,
                                             rows: v.baseAddress! + lo * d, rowCount: hi - lo, firstRow: lo, dimension: d,
                                             metric: metric, into: tops)
                            }
                        }
                    }
                }
            }
        }
        return vectors.withUnsafeBufferPointer { v in
            BatchSearch.finish(partial, queries: queries, k: k, keep: keep, dimension: d, metric: metric,
                               vector: { v.baseAddress! + $0 * d }, id: { ids[$0] })
        }
    }
}

/// One worker's scratch space for the batch kernel: a packed block of rows with their norms,
/// a tile of distances and the indexes that pass a heap's threshold.
struct TileScanner {
    /// Queries per call of the kernel: their distances to a block stay in the L2 cache.
    static let queryChunk = 32
    private var packed: [Float] = []
    private var xnorms: [Float] = []
    private var dist: [Float] = []
    private var passing: [UInt32] = []

    /// Rows per packed block: about 256 KiB of floats, a whole number of 32-row tiles.
    static func rowBlock(_ dimension: Int) -> Int { max(32, (65_536 / dimension) / 32 * 32) }

    /// Offers every row `firstRow + r` (`r < rowCount`, vectors at `rows`) to the heap of each
    /// query: query `i` of the `count` at `queries` (row-major) goes to `tops[queryIndex[i]]`
    /// (`tops[i]` when nil). `qnorms` are the queries' squared norms (needed for L2 only). Rows
    /// are read in blocks of ``rowBlock(_:)``, each packed once for all queries.
    mutating func scan(queries: UnsafePointer<Float>, qnorms: UnsafePointer<Float>?, count: Int, queryIndex: UnsafePointer<Int32>?,
                       rows: UnsafePointer<Float>, rowCount: Int, firstRow: Int, dimension: Int, metric: Metric,
                       into tops: UnsafeMutablePointer<TopK>) {
        let block = Self.rowBlock(dimension)
        let mode: Int32 = metric == .l2 ? 0 : (metric == .dot ? 1 : 2)
        let chunk = Self.queryChunk
        if packed.count < vecgo_tile_packed_floats(block, dimension) {
            packed = [Float](repeating: 0, count: vecgo_tile_packed_floats(block, dimension))
            xnorms = [Float](repeating: 0, count: block)
            dist = [Float](repeating: 0, count: chunk * block)
            passing = [UInt32](repeating: 0, count: block)
        }
        packed.withUnsafeMutableBufferPointer { p in
            xnorms.withUnsafeMutableBufferPointer { xn in
                dist.withUnsafeMutableBufferPointer { d in
                    passing.withUnsafeMutableBufferPointer { idx in
                        var start = 0
                        while start < rowCount {
                            let n = min(block, rowCount - start)
                            let src = rows + start * dimension
                            vecgo_tile_pack(src, n, dimension, p.baseAddress!)
                            if mode == 0 { vecgo_tile_norms(src, n, dimension, xn.baseAddress!) }
                            var q0 = 0
                            while q0 < count {
                                let m = min(chunk, count - q0)
                                vecgo_tile_distances(mode, queries + q0 * dimension, qnorms.map { $0 + q0 }, m, dimension,
                                                     p.baseAddress!, xn.baseAddress!, n, d.baseAddress!, block)
                                for i in 0..<m {
                                    let qi = queryIndex.map { Int($0[q0 + i]) } ?? (q0 + i)
                                    let row = d.baseAddress! + i * block
                                    let found = vecgo_select_below(row, n, tops[qi].threshold, idx.baseAddress!)
                                    for c in 0..<found {
                                        let r = Int(idx[c])
                                        tops[qi].offer(Neighbor(id: UInt64(firstRow + start + r), distance: row[r]))
                                    }
                                }
                                q0 += m
                            }
                            start += n
                        }
                    }
                }
            }
        }
    }
}
