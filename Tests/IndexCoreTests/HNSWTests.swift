import IndexCore
import Testing
import _VecgoTestSupport

/// Clustered Gaussian data from a fixed seed.
func clustered(_ n: Int, dim: Int, clusters: Int = 20, seed: UInt64) -> [[Float]] {
    var rng = SeededRNG(seed: seed)
    let centers = (0..<clusters).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
    return (0..<n).map { _ in
        let c = centers[Int.random(in: 0..<clusters, using: &rng)]
        return c.map { $0 + Float.random(in: -0.15...0.15, using: &rng) }
    }
}

func exactTopK(_ data: [[Float]], _ q: [Float], k: Int, metric: Metric = .l2) -> [UInt64] {
    var top = TopK(k: k)
    let flat = data.flatMap { $0 }
    flat.withUnsafeBufferPointer {
        FlatSearch.search(query: q, vectors: $0, dimension: q.count, metric: metric, ids: nil, into: &top)
    }
    return top.sorted().map(\.id)
}

func recall(_ got: [[UInt64]], _ want: [[UInt64]]) -> Double {
    let hits = zip(got, want).reduce(0) { $0 + Set($1.0).intersection($1.1).count }
    return Double(hits) / Double(want.reduce(0) { $0 + $1.count })
}

@Suite struct HNSWTests {
    @Test func recallAtTenOnClusteredData() {
        let data = clustered(4000, dim: 24, seed: 1)
        let queries = clustered(100, dim: 24, seed: 2)
        let index = HNSWIndex(dimension: 24, metric: .l2, parameters: .init(m: 16, efConstruction: 200, efSearch: 128))
        for (i, v) in data.enumerated() { index.insert(v, id: UInt64(i)) }
        #expect(index.count == data.count)
        let got = queries.map { index.search($0, k: 10).map(\.id) }
        let want = queries.map { exactTopK(data, $0, k: 10) }
        let r = recall(got, want)
        #expect(r >= 0.95, "recall@10 = \(r)")
    }

    @Test func deletedRowsAreNeverReturned() {
        let data = clustered(1000, dim: 8, seed: 3)
        let index = HNSWIndex(dimension: 8, metric: .l2)
        for (i, v) in data.enumerated() { index.insert(v, id: UInt64(i)) }
        for i in stride(from: 0, to: 1000, by: 2) { #expect(index.markDeleted(id: UInt64(i))) }
        #expect(!index.markDeleted(id: 0))
        for q in data.prefix(20) {
            let hits = index.search(q, k: 10)
            #expect(hits.count == 10)
            #expect(hits.allSatisfy { $0.id % 2 == 1 })
        }
    }

    @Test func emptyAndTinyGraphs() {
        let index = HNSWIndex(dimension: 2, metric: .l2)
        #expect(index.search([0, 0], k: 3).isEmpty)
        index.insert([1, 1], id: 42)
        #expect(index.search([0, 0], k: 3).map(\.id) == [42])
    }

    @Test func searchesRunWhileOneWriterInserts() async {
        let data = clustered(3000, dim: 16, seed: 4)
        let index = HNSWIndex(dimension: 16, metric: .l2, parameters: .init(efConstruction: 64))
        for (i, v) in data.prefix(500).enumerated() { index.insert(v, id: UInt64(i)) }
        await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for (i, v) in data.enumerated().dropFirst(500) { index.insert(v, id: UInt64(i)) }
                return 0
            }
            for t in 0..<3 {
                group.addTask {
                    var found = 0
                    for q in data.prefix(200) { found += index.search(q, k: 5).count }
                    return t >= 0 ? found : 0
                }
            }
            for await n in group where n > 0 { #expect(n == 200 * 5) }
        }
        #expect(index.count == 3000)
    }

    @Test(arguments: [Metric.cosine, Metric.dot])
    func innerProductMetrics(metric: Metric) {
        let data = clustered(2000, dim: 16, seed: 5).map(Distance.normalized)
        let index = HNSWIndex(dimension: 16, metric: metric, parameters: .init(efSearch: 128))
        for (i, v) in data.enumerated() { index.insert(v, id: UInt64(i)) }
        let queries = clustered(50, dim: 16, seed: 6).map(Distance.normalized)
        let r = recall(queries.map { index.search($0, k: 10).map(\.id) }, queries.map { exactTopK(data, $0, k: 10, metric: metric) })
        #expect(r >= 0.95, "\(metric) recall@10 = \(r)")
    }
}

@Suite struct HNSWGraphExportTests {
    @Test func aLoadedGraphAnswersExactlyLikeTheOriginal() {
        let data = clustered(1500, dim: 12, seed: 10)
        let original = HNSWIndex(dimension: 12, metric: .l2, parameters: .init(m: 8, efConstruction: 64))
        for (i, v) in data.enumerated() { original.insert(v, id: UInt64(i) + 100) }
        let graph = original.exportGraph()
        let loaded = HNSWIndex(dimension: 12, metric: .l2, parameters: .init(), vectors: data.flatMap { $0 },
                               ids: (0..<1500).map { UInt64($0) + 100 }, graph: graph)
        #expect(loaded.exportGraph() == graph)
        for q in clustered(30, dim: 12, seed: 11) {
            #expect(loaded.search(q, k: 10, ef: 50) == original.search(q, k: 10, ef: 50))
        }
    }
}
