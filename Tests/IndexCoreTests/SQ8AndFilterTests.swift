import IndexCore
import Testing

@Suite struct SQ8AndFilterTests {
    @Test func sq8CodesRoundTripWithinHalfAStep() {
        let data = clustered(500, dim: 10, seed: 30).flatMap { $0 }
        let q = data.withUnsafeBufferPointer { SQ8Quantizer(training: $0, dimension: 10) }
        let codes = q.encode(data)
        for i in 0..<data.count {
            let j = i % 10
            let decoded = q.minimums[j] + Float(codes[i]) * q.scales[j]
            #expect(abs(decoded - data[i]) <= q.scales[j] / 2 + 1e-5)
        }
    }

    @Test(arguments: [Metric.l2, Metric.dot])
    func sq8DistancesApproximateFloatDistances(metric: Metric) {
        let data = clustered(200, dim: 33, seed: 31)
        let flat = data.flatMap { $0 }
        let quantizer = flat.withUnsafeBufferPointer { SQ8Quantizer(training: $0, dimension: 33) }
        let codes = quantizer.encode(flat)
        let query = clustered(1, dim: 33, seed: 32)[0]
        var approx = [Float](repeating: 0, count: 200)
        codes.withUnsafeBufferPointer { c in
            approx.withUnsafeMutableBufferPointer { quantizer.distances(metric, query: query, codes: c, out: $0) }
        }
        for i in 0..<200 {
            let exact = query.withUnsafeBufferPointer { q in
                data[i].withUnsafeBufferPointer { Distance.distance(metric, q.baseAddress!, $0.baseAddress!, 33) }
            }
            #expect(abs(approx[i] - exact) <= 0.05 * max(1, abs(exact)), "row \(i): \(approx[i]) vs \(exact)")
        }
    }

    @Test func ivfWithSQ8AndRerankKeepsRecall() {
        let data = clustered(5000, dim: 24, seed: 33)
        let queries = clustered(100, dim: 24, seed: 34)
        let ivf = IVFIndex(vectors: data.flatMap { $0 }, ids: (0..<5000).map(UInt64.init), dimension: 24, metric: .l2,
                           nlist: 64, sq8: true)
        #expect(ivf.codes.count == 5000 * 24)
        let want = queries.map { exactTopK(data, $0, k: 10) }
        let r = recall(queries.map { ivf.search($0, k: 10, nprobe: 8, rerank: 4).map(\.id) }, want)
        #expect(r >= 0.95, "SQ8 + rerank recall@10 = \(r)")
    }

    @Test func filtersReturnOnlyAllowedRows() {
        let data = clustered(3000, dim: 8, seed: 35)
        var evens = Bitmap(count: 3000)
        for i in stride(from: 0, to: 3000, by: 2) { evens.insert(i) }
        #expect(evens.cardinality == 1500)
        #expect(evens.inverted().cardinality == 1500)
        let q = data[11]
        // Flat: exact among allowed rows.
        var top = TopK(k: 10)
        let flat = data.flatMap { $0 }
        flat.withUnsafeBufferPointer { v in
            q.withUnsafeBufferPointer { qp in
                FlatSearch.search(query: qp.baseAddress!, vectors: v, dimension: 8, metric: .l2, into: &top,
                                  id: { UInt64($0) }, skip: { !evens.contains($0) })
            }
        }
        let flatIDs = top.sorted().map(\.id)
        let evenData = data.enumerated().filter { $0.offset % 2 == 0 }
        let want = exactTopK(evenData.map(\.element), q, k: 10).map { UInt64(evenData[Int($0)].offset) }
        #expect(flatIDs == want)
        // HNSW: filtered graph search, node i = row i.
        let h = HNSWIndex(dimension: 8, metric: .l2)
        for (i, v) in data.enumerated() { h.insert(v, id: UInt64(i)) }
        let hits = h.search(q, k: 10, ef: 100, allowed: evens)
        #expect(hits.count == 10 && hits.allSatisfy { $0.id % 2 == 0 })
        #expect(Set(hits.map(\.id)).intersection(want).count >= 9)
        // A very selective filter still returns what exists.
        var three = Bitmap(count: 3000)
        for i in [5, 1500, 2999] { three.insert(i) }
        #expect(Set(h.search(q, k: 10, ef: 64, allowed: three).map(\.id)).isSubset(of: [5, 1500, 2999]))
        // IVF: stored rows are reordered; the bitmap is over stored rows.
        let ivf = IVFIndex(vectors: flat, ids: (0..<3000).map(UInt64.init), dimension: 8, metric: .l2, nlist: 16)
        var storedEvens = Bitmap(count: 3000)
        for (row, id) in ivf.ids.enumerated() where id % 2 == 0 { storedEvens.insert(row) }
        let ivfHits = ivf.search(q, k: 10, nprobe: 16, allowed: storedEvens).map(\.id)
        #expect(ivfHits == want)
    }
}
