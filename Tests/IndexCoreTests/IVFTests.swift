import IndexCore
import Testing

@Suite struct IVFTests {
    @Test func partitionsAreContiguousAndCoverEveryRow() {
        let data = clustered(3000, dim: 16, seed: 7)
        let ivf = IVFIndex(vectors: data.flatMap { $0 }, ids: (0..<3000).map { UInt64($0) * 3 }, dimension: 16,
                           metric: .l2, nlist: 32)
        #expect(ivf.nlist == 32)
        #expect(ivf.offsets.first == 0 && ivf.offsets.last == 3000)
        #expect(zip(ivf.offsets, ivf.offsets.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(Set(ivf.ids) == Set((0..<3000).map { UInt64($0) * 3 }))
        // Every row sits in the partition of its nearest centroid.
        for p in 0..<ivf.nlist {
            for row in ivf.offsets[p]..<ivf.offsets[p + 1] {
                let v = Array(ivf.vectors[row * 16..<(row + 1) * 16])
                #expect(ivf.probe(v, nprobe: 1) == [p])
            }
        }
    }

    @Test func recallAtTenOnClusteredData() {
        let data = clustered(5000, dim: 24, seed: 8)
        let queries = clustered(100, dim: 24, seed: 9)
        let ivf = IVFIndex(vectors: data.flatMap { $0 }, ids: (0..<5000).map(UInt64.init), dimension: 24, metric: .l2,
                           nlist: 64)
        let want = queries.map { exactTopK(data, $0, k: 10) }
        let r = recall(queries.map { ivf.search($0, k: 10, nprobe: 8).map(\.id) }, want)
        #expect(r >= 0.95, "recall@10 at nprobe 8 = \(r)")
        #expect(recall(queries.map { ivf.search($0, k: 10, nprobe: 64).map(\.id) }, want) == 1.0)
    }

    @Test func kMeansFindsSeparatedClusters() {
        // Four tight, far-apart clusters: k-means++ must find one centroid in each.
        var data: [Float] = []
        let centers: [[Float]] = [[0, 0], [100, 0], [0, 100], [100, 100]]
        for i in 0..<400 { data += centers[i % 4].map { $0 + Float(i % 7) * 0.01 } }
        let c = data.withUnsafeBufferPointer { KMeans.train($0, dimension: 2, k: 4) }
        let found = stride(from: 0, to: c.count, by: 2).map { [c[$0], c[$0 + 1]] }
        for center in centers {
            #expect(found.contains { abs($0[0] - center[0]) < 1 && abs($0[1] - center[1]) < 1 }, "\(center)")
        }
    }
}
