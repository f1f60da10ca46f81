// The batch search API: every kernel level against the reference distances, and flat and IVF
// batch results equal to one search per query, for every metric, odd dimensions and ragged tiles.
@_spi(Testing) import IndexCore
import Testing
import _VecgoTestSupport

private func gaussianRows(_ n: Int, dim: Int, seed: UInt64, normalize: Bool) -> [Float] {
    var rng = SeededRNG(seed: seed)
    var out: [Float] = []
    for _ in 0..<n {
        let v = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
        out += normalize ? Distance.normalized(v) : v
    }
    return out
}

@Suite struct BatchSearchTests {
    /// Each kernel level (portable, AVX2+FMA, AVX-512 where the CPU has them) gives the
    /// reference distance for every query × row pair, including ragged row groups and query tiles.
    @Test(arguments: [Metric.l2, .dot, .cosine])
    func tileKernelsMatchReference(metric: Metric) {
        for dim in [1, 7, 33, 128] {
            let queries = gaussianRows(11, dim: dim, seed: UInt64(dim), normalize: metric == .cosine)
            let rows = gaussianRows(45, dim: dim, seed: UInt64(dim) + 100, normalize: metric == .cosine)
            for level in 0...2 {
                let (got, used) = BatchSearch.tileDistances(metric, level: level, queries: queries, rows: rows, dimension: dim)
                #expect(used <= level)
                for i in 0..<11 {
                    for r in 0..<45 {
                        let want = queries.withUnsafeBufferPointer { q in
                            rows.withUnsafeBufferPointer { x in
                                Distance.distance(metric, q.baseAddress! + i * dim, x.baseAddress! + r * dim, dim)
                            }
                        }
                        let g = got[i * 45 + r]
                        #expect(abs(g - max(want, metric == .l2 ? 0 : -.infinity)) <= 1e-4 * max(1, abs(want)),
                                "level \(used) dim \(dim) query \(i) row \(r): \(g) vs \(want)")
                    }
                }
            }
        }
    }

    /// Flat batch search returns the rows one search per query returns, in the same order, with
    /// the same distances; rows (1 013) and queries (21) fill no tile evenly.
    @Test(arguments: [Metric.l2, .dot, .cosine])
    func flatBatchEqualsSingleQueries(metric: Metric) {
        for dim in [7, 33, 128] {
            let n = 1013, nq = 21
            let base = gaussianRows(n, dim: dim, seed: 5 + UInt64(dim), normalize: metric == .cosine)
            let queries = gaussianRows(nq, dim: dim, seed: 6 + UInt64(dim), normalize: metric == .cosine)
            for threads in [1, 3] {
                let batch = base.withUnsafeBufferPointer {
                    BatchSearch.flat(queries: queries, vectors: $0, dimension: dim, metric: metric, k: 10, threads: threads)
                }
                #expect(batch.count == nq)
                for i in 0..<nq {
                    var top = TopK(k: 10)
                    base.withUnsafeBufferPointer {
                        FlatSearch.search(query: Array(queries[i * dim..<(i + 1) * dim]), vectors: $0, dimension: dim,
                                          metric: metric, ids: nil, into: &top)
                    }
                    let single = top.sorted()
                    #expect(batch[i].map(\.id) == single.map(\.id), "\(metric) dim \(dim) threads \(threads) query \(i)")
                    for (a, b) in zip(batch[i], single) {
                        #expect(abs(a.distance - b.distance) <= 1e-5 * max(1, abs(b.distance)))
                    }
                }
            }
        }
    }

    /// k larger than the rows: every row comes back, nearest first.
    @Test func flatBatchWithFewerRowsThanK() {
        let base = gaussianRows(5, dim: 3, seed: 1, normalize: false)
        let q = gaussianRows(2, dim: 3, seed: 2, normalize: false)
        let got = base.withUnsafeBufferPointer { BatchSearch.flat(queries: q, vectors: $0, dimension: 3, metric: .l2, k: 10) }
        #expect(got.map { Set($0.map(\.id)) } == [Set(0..<5), Set(0..<5)])
        #expect(got.allSatisfy { zip($0, $0.dropFirst()).allSatisfy { $0.distance <= $1.distance } })
    }

    /// IVF batch search probes the same partitions and returns the same rows as one search per
    /// query at the same nprobe.
    @Test(arguments: [Metric.l2, .dot, .cosine])
    func ivfBatchEqualsSingleQueries(metric: Metric) {
        let dim = 33, n = 3001, nq = 37
        let base = gaussianRows(n, dim: dim, seed: 11, normalize: metric == .cosine)
        let queries = gaussianRows(nq, dim: dim, seed: 12, normalize: metric == .cosine)
        let ivf = IVFIndex(vectors: base, ids: (0..<n).map { UInt64($0) * 7 + 1 }, dimension: dim, metric: metric, nlist: 24)
        for nprobe in [1, 4] {
            let batch = ivf.search(batch: queries, k: 10, nprobe: nprobe, threads: 2)
            #expect(batch.count == nq)
            for i in 0..<nq {
                let single = ivf.search(Array(queries[i * dim..<(i + 1) * dim]), k: 10, nprobe: nprobe)
                #expect(batch[i].map(\.id) == single.map(\.id), "\(metric) nprobe \(nprobe) query \(i)")
                for (a, b) in zip(batch[i], single) {
                    #expect(abs(a.distance - b.distance) <= 1e-5 * max(1, abs(b.distance)))
                }
            }
        }
    }
}
