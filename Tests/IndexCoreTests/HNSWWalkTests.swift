/// Tests of the HNSW level-0 walk in C (CVecgoNative/hnsw.c) and of the node-block layout:
/// visited generations across the 16-bit wrap, distances for every metric, filter bitmaps
/// shorter than the graph, and stored-layout round trips at dimensions that need padding.
import IndexCore
import Testing

@Suite struct HNSWWalkTests {
    @Test func visitedMarksSurviveTheGenerationWrap() {
        // Each search takes the next 16-bit generation of visited marks. Query A once, then a
        // far query B 65 535 times (B's walk never touches A's region), then A again: that
        // lands on A's first generation again, so A's nodes look visited unless the wrap
        // cleared the marks. A loaded graph starts with no scratch, so generations start at 1.
        let data = clustered(3000, dim: 8, clusters: 30, seed: 20)
        let built = HNSWIndex(dimension: 8, metric: .l2, parameters: .init(m: 8, efConstruction: 32))
        for (i, v) in data.enumerated() { built.insert(v, id: UInt64(i)) }
        let index = HNSWIndex(dimension: 8, metric: .l2, parameters: .init(), vectors: data.flatMap { $0 },
                              ids: (0..<3000).map(UInt64.init), graph: built.exportGraph())
        let a = data[0]
        let b = data.max { distance(a, $0) < distance(a, $1) }!
        let first = index.search(a, k: 10, ef: 10)
        #expect(first.count == 10 && first[0].id == 0)
        for _ in 0..<65_535 { _ = index.search(b, k: 1, ef: 10) }
        #expect(index.search(a, k: 10, ef: 10) == first)
        #expect(index.search(a, k: 10, ef: 10) == first)
    }

    private func distance(_ x: [Float], _ y: [Float]) -> Float {
        zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    }

    @Test(arguments: Metric.allCases)
    func distancesAreTheMetricsOwn(metric: Metric) {
        let data = clustered(800, dim: 20, seed: 21).map { metric == .l2 ? $0 : Distance.normalized($0) }
        let index = HNSWIndex(dimension: 20, metric: metric)
        for (i, v) in data.enumerated() { index.insert(v, id: UInt64(i)) }
        for q in clustered(10, dim: 20, seed: 22).map({ metric == .l2 ? $0 : Distance.normalized($0) }) {
            let hits = index.search(q, k: 10, ef: 64)
            #expect(hits.count == 10)
            #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.distance <= $1.distance })
            for h in hits {
                let want = q.withUnsafeBufferPointer { a in
                    data[Int(h.id)].withUnsafeBufferPointer { b in
                        Distance.distance(metric, a.baseAddress!, b.baseAddress!, 20)
                    }
                }
                #expect(abs(h.distance - want) <= 1e-4 * max(1, abs(want)), "\(metric): \(h.distance) vs \(want)")
            }
        }
    }

    @Test func aFilterShorterThanTheGraphAllowsOnlyItsRows() {
        let data = clustered(1000, dim: 8, seed: 23)
        let index = HNSWIndex(dimension: 8, metric: .l2)
        for (i, v) in data.enumerated() { index.insert(v, id: UInt64(i)) }
        var allowed = Bitmap(count: 200)
        for i in stride(from: 0, to: 200, by: 3) { allowed.insert(i) }
        for q in data.suffix(5) {
            let hits = index.search(q, k: 10, ef: 200, allowed: allowed)
            #expect(hits.count == 10)
            #expect(hits.allSatisfy { $0.id < 200 && $0.id % 3 == 0 })
            #expect(Set(hits.map(\.id)).intersection(index.exactSearch(q, k: 10, allowed: allowed).map(\.id)).count >= 9)
        }
    }

    @Test(arguments: [1, 5, 33, 96])
    func storedLayoutRoundTripsAtAnyDimension(dimension: Int) {
        let data = clustered(600, dim: dimension, seed: 24)
        let original = HNSWIndex(dimension: dimension, metric: .l2, parameters: .init(m: 6, efConstruction: 40))
        for (i, v) in data.enumerated() { original.insert(v, id: UInt64(i)) }
        let graph = original.exportGraph()
        #expect(graph.level0.count == 600 * 13)
        let loaded = HNSWIndex(dimension: dimension, metric: .l2, parameters: .init(), vectors: data.flatMap { $0 },
                               ids: (0..<600).map(UInt64.init), graph: graph)
        #expect(loaded.exportGraph() == graph)
        for row in [0, 299, 599] { #expect(loaded.vector(row: row) == data[row]) }
        for q in data.prefix(10) { #expect(loaded.search(q, k: 5, ef: 30) == original.search(q, k: 5, ef: 30)) }
    }
}
