@_spi(Testing) import IndexCore
import Testing
import _VecgoTestSupport

@Suite struct DistanceTests {
    static func reference(_ metric: Metric, _ a: [Float], _ b: [Float]) -> Double {
        switch metric {
        case .l2: zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        case .cosine: 1 - zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        case .dot: -zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }

    @Test(arguments: [1, 3, 8, 15, 16, 17, 127, 129, 1536])
    func kernelsMatchDoublePrecisionReference(dimension: Int) {
        var rng = SeededRNG(seed: UInt64(dimension))
        let a = (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) }
        for metric in Metric.allCases {
            let got = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in Distance.distance(metric, pa.baseAddress!, pb.baseAddress!, dimension) }
            }
            let want = Self.reference(metric, a, b)
            #expect(abs(Double(got) - want) <= 1e-4 * max(1, abs(want)), "\(metric) dim \(dimension) [\(Distance.kernelName)]")
        }
    }

    @Test(arguments: [37, 128, 48])
    func batchMatchesPairwise(dim: Int) {
        var rng = SeededRNG(seed: 9)
        let count = 50
        let base = (0..<dim * count).map { _ in Float.random(in: -1...1, using: &rng) }
        let q = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
        for metric in Metric.allCases {
            var out = [Float](repeating: 0, count: count)
            q.withUnsafeBufferPointer { qp in
                base.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        Distance.batch(metric, query: qp.baseAddress!, base: bp.baseAddress!, count: count,
                                       dimension: dim, out: op.baseAddress!)
                    }
                }
            }
            for i in 0..<count {
                let want = Self.reference(metric, q, Array(base[i * dim..<(i + 1) * dim]))
                #expect(abs(Double(out[i]) - want) <= 1e-4 * max(1, abs(want)))
            }
        }
    }

    @Test func topKKeepsTheNearestInOrder() {
        var top = TopK(k: 3)
        for (id, d) in [(1, 5.0), (2, 1.0), (3, 4.0), (4, 0.5), (5, 9.0), (6, 1.0)] {
            top.offer(Neighbor(id: UInt64(id), distance: Float(d)))
        }
        #expect(top.sorted().map(\.id) == [4, 2, 6])
    }

    @Test func flatSearchIsExact() {
        var rng = SeededRNG(seed: 3)
        let dim = 16, n = 500
        let vectors = (0..<dim * n).map { _ in Float.random(in: 0...1, using: &rng) }
        let q = (0..<dim).map { _ in Float.random(in: 0...1, using: &rng) }
        var top = TopK(k: 10)
        vectors.withUnsafeBufferPointer {
            FlatSearch.search(query: q, vectors: $0, dimension: dim, metric: .l2, ids: nil, into: &top)
        }
        let brute = (0..<n).map { i in (UInt64(i), Self.reference(.l2, q, Array(vectors[i * dim..<(i + 1) * dim]))) }
            .sorted { $0.1 < $1.1 }.prefix(10).map(\.0)
        #expect(top.sorted().map(\.id) == Array(brute))
    }
}

extension DistanceTests {
    /// Every kernel level this CPU has (portable, AVX2+FMA, AVX-512) against the reference,
    /// pairwise and batched, on odd dimensions.
    @Test func everyKernelLevelMatchesTheReference() {
        var rng = SeededRNG(seed: 77)
        var seen = Set<Int>()
        for level in 0...2 {
            for dim in [1, 3, 15, 16, 17, 127, 128, 129, 1536] {
                let a = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
                let base = (0..<dim * 9).map { _ in Float.random(in: -1...1, using: &rng) }
                for metric in Metric.allCases {
                    var out = [Float](repeating: 0, count: 9)
                    let used = a.withUnsafeBufferPointer { q in
                        base.withUnsafeBufferPointer { b in
                            out.withUnsafeMutableBufferPointer { o in
                                Distance.batch(metric, level: level, query: q.baseAddress!, base: b.baseAddress!, count: 9,
                                               dimension: dim, out: o.baseAddress!)
                            }
                        }
                    }
                    seen.insert(used)
                    for i in 0..<9 {
                        let want = Self.reference(metric, a, Array(base[i * dim..<(i + 1) * dim]))
                        #expect(abs(Double(out[i]) - want) <= 1e-4 * max(1, abs(want)), "level \(level) \(metric) dim \(dim)")
                    }
                }
            }
        }
        #expect(seen.contains(0), "the portable kernels were not exercised")
    }
}
