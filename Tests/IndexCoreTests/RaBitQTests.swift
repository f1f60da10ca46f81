// RaBitQ: the normative rotation and encoding (golden values), the estimator's accuracy and
// bounds, and recall after re-ranking.
import Foundation
@_spi(Testing) import IndexCore
import Testing
import _VecgoTestSupport

/// Row-major Gaussian vectors (Box–Muller), each coordinate `mean + N(0, 1)`.
private func gaussian(_ n: Int, dim: Int, mean: Float = 0, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<(n * dim)).map { _ in
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
        return mean + Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

/// The coordinate-wise mean of `rows` row-major vectors.
private func mean(_ data: [Float], dim: Int) -> [Float] {
    let rows = data.count / dim
    var c = [Double](repeating: 0, count: dim)
    for i in 0..<data.count { c[i % dim] += Double(data[i]) }
    return c.map { Float($0 / Double(rows)) }
}

/// The records of every row of `data` encoded against `centroid`.
private func encodeAll(_ q: RaBitQ, _ data: [Float], centroid: [Float]) -> [UInt8] {
    let rows = data.count / q.dimension
    var records = [UInt8](repeating: 0, count: rows * q.recordBytes)
    var rotated = [Float](repeating: 0, count: q.paddedDimension)
    centroid.withUnsafeBufferPointer { c in rotated.withUnsafeMutableBufferPointer { q.rotate(c.baseAddress!, into: $0.baseAddress!) } }
    data.withUnsafeBufferPointer { d in
        centroid.withUnsafeBufferPointer { c in
            rotated.withUnsafeBufferPointer { rc in
                records.withUnsafeMutableBytes { r in
                    for i in 0..<rows {
                        q.encodeRecord(d.baseAddress! + i * q.dimension, centroid: c.baseAddress!, rotatedCentroid: rc.baseAddress!,
                                       into: r.baseAddress! + i * q.recordBytes)
                    }
                }
            }
        }
    }
    return records
}

/// Estimates, lower and upper bounds of every record for `query`.
private func estimateAll(_ q: RaBitQ, _ records: [UInt8], query: [Float], centroid: [Float], metric: Metric,
                         epsilon0: Float = 1.9) -> (estimate: [Float], lower: [Float], upper: [Float]) {
    let rows = records.count / q.recordBytes
    var e = [Float](repeating: 0, count: rows), lo = e, hi = e
    let prepared = query.withUnsafeBufferPointer { qp in
        centroid.withUnsafeBufferPointer {
            q.prepare(query: qp.baseAddress!, centroid: $0.baseAddress!, metric: metric, epsilon0: epsilon0)
        }
    }
    records.withUnsafeBytes { r in
        e.withUnsafeMutableBufferPointer { ep in
            lo.withUnsafeMutableBufferPointer { lp in
                hi.withUnsafeMutableBufferPointer { hp in
                    q.estimate(prepared, records: r.baseAddress!, count: rows, estimates: ep.baseAddress!,
                               lowerBounds: lp.baseAddress!, upperBounds: hp.baseAddress!)
                }
            }
        }
    }
    return (e, lo, hi)
}

/// Exact distances from `query` to every row of `data`.
private func exactAll(_ data: [Float], query: [Float], dim: Int, metric: Metric) -> [Float] {
    var out = [Float](repeating: 0, count: data.count / dim)
    data.withUnsafeBufferPointer { d in
        query.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer {
                Distance.batch(metric, query: qp.baseAddress!, base: d.baseAddress!, count: d.count / dim, dimension: dim,
                               out: $0.baseAddress!)
            }
        }
    }
    return out
}

private func rotated(_ q: RaBitQ, _ x: [Float]) -> [Float] {
    var out = [Float](repeating: .nan, count: q.paddedDimension)
    x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { q.rotate(xp.baseAddress!, into: $0.baseAddress!) } }
    return out
}

private func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

@Suite struct RaBitQTests {
    @Test(arguments: [(1, 64), (64, 64), (65, 128), (96, 128), (128, 128), (768, 1024), (1024, 1024)])
    func paddedDimensionIsThePowerOfTwoAtLeast64(dimension: Int, padded: Int) {
        let q = RaBitQ(dimension: dimension, seed: 3)
        #expect(q.paddedDimension == padded)
        #expect(q.codeBytes == padded / 8 && q.recordBytes == padded / 8 + 12)
    }

    @Test(arguments: [64, 128, 256])
    func rotationOfTheBasisIsOrthonormal(dimension: Int) {
        let q = RaBitQ(dimension: dimension, seed: 11)
        let columns = (0..<dimension).map { i in
            rotated(q, (0..<dimension).map { $0 == i ? Float(1) : 0 })
        }
        var worst = 0.0
        for i in 0..<dimension {
            for j in i..<dimension { worst = max(worst, abs(dot(columns[i], columns[j]) - (i == j ? 1 : 0))) }
        }
        #expect(worst <= 1e-5, "max |RᵀR − I| = \(worst)")
    }

    @Test(arguments: [96, 100, 768])
    func rotationPreservesNormsAndInnerProducts(dimension: Int) {
        let q = RaBitQ(dimension: dimension, seed: 12)
        let data = gaussian(20, dim: dimension, mean: 0.3, seed: 13)
        let rows = (0..<20).map { Array(data[$0 * dimension..<($0 + 1) * dimension]) }
        let rot = rows.map { rotated(q, $0) }
        for i in 0..<20 {
            for j in i..<20 {
                let want = dot(rows[i], rows[j]), got = dot(rot[i], rot[j])
                #expect(abs(got - want) <= 1e-5 * max(1, dot(rows[i], rows[i]).squareRoot() * dot(rows[j], rows[j]).squareRoot()))
            }
        }
    }

    /// Pins the sign definition: SplitMix64 from the seed, one word per 64 signs, round by
    /// round, bit j set meaning −1.
    @Test func signsForSeedOneAreTheSplitMixBits() {
        // The first three SplitMix64 outputs for seed 1.
        let words: [UInt64] = [0x910A_2DEC_8902_5CC1, 0xBEEB_8DA1_658E_EC67, 0xF893_A2EE_FB32_555E]
        let q64 = RaBitQ(dimension: 64, seed: 1)
        for r in 0..<3 {
            #expect(q64.signs(round: r) == (0..<64).map { (words[r] >> UInt64($0)) & 1 == 1 ? -1 : 1 })
        }
        #expect(Array(q64.signs(round: 0).prefix(16)) == [-1, 1, 1, 1, 1, 1, -1, -1, 1, 1, -1, -1, -1, 1, -1, 1])
        #expect(Array(q64.signs(round: 1).prefix(16)) == [-1, -1, -1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, -1, -1, -1])
        #expect(Array(q64.signs(round: 2).prefix(16)) == [1, -1, -1, -1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1])
        // With P = 128 each round takes two words: round 1 starts at the third.
        let q128 = RaBitQ(dimension: 100, seed: 1)
        #expect(Array(q128.signs(round: 0).prefix(128)) == (0..<128).map { (words[$0 / 64] >> UInt64($0 % 64)) & 1 == 1 ? -1 : 1 })
        #expect(Array(q128.signs(round: 1).prefix(64)) == q64.signs(round: 2))
    }

    /// Golden values from an independent float32 implementation of the definitions.
    @Test func encodingOfKnownVectorsGivesLiteralBytes() {
        let q = RaBitQ(dimension: 8, seed: 1)
        let row: [Float] = [1, -2, 0.5, 3, 0, -1.5, 2.25, -0.75]
        let centroid = [Float](repeating: 0.25, count: 8)
        #expect(rotated(q, row).prefix(4).map(\.bitPattern) == [0xBD00_0000, 0x3F10_0000, 0x3E80_0000, 0x3E60_0000])
        let record = encodeAll(q, row, centroid: centroid)
        // Code, n, x0, then the centroid term t = 0.765625 (checked against numpy float32 too).
        #expect(record == [238, 171, 59, 183, 144, 61, 142, 70] + [0x29, 0xF2, 0x93, 0x40] + [0xC5, 0x2E, 0x4C, 0x3F]
                    + [0x00, 0x00, 0x44, 0x3F])

        // P = 128: the 1/√P scale is not exact.
        let q2 = RaBitQ(dimension: 100, seed: 7)
        let row2 = (0..<100).map { Float(($0 * 37) % 11 - 5) / 4 }
        var code = [UInt8](repeating: 0xFF, count: q2.codeBytes)
        let (n, x0) = row2.withUnsafeBufferPointer { r in
            [Float](repeating: 0, count: 100).withUnsafeBufferPointer { c in
                code.withUnsafeMutableBufferPointer { q2.encode(r.baseAddress!, centroid: c.baseAddress!, code: $0.baseAddress!) }
            }
        }
        #expect(code == [85, 190, 59, 9, 205, 249, 35, 89, 42, 11, 100, 165, 184, 217, 66, 46])
        #expect(n.bitPattern == 0x40FE_DF5D && x0.bitPattern == 0x3F4D_A3DA)
    }

    @Test(arguments: Metric.allCases)
    func aRowAtItsCentroidIsEstimatedExactly(metric: Metric) {
        let q = RaBitQ(dimension: 10, seed: 5)
        var c = (0..<10).map { Float($0) / 10 }
        if metric == .cosine { c = Distance.normalized(c) }
        let record = encodeAll(q, c, centroid: c)
        #expect(record == [UInt8](repeating: 0, count: q.codeBytes) + [0, 0, 0, 0] + [0x00, 0x00, 0x80, 0x3F] + [0, 0, 0, 0])
        var query = (0..<10).map { Float(10 - $0) / 7 }
        if metric == .cosine { query = Distance.normalized(query) }
        let (e, lo, hi) = estimateAll(q, record, query: query, centroid: c, metric: metric)
        let exact = exactAll(c, query: query, dim: 10, metric: metric)[0]
        #expect(abs(e[0] - exact) <= 1e-5 * max(1, abs(exact)))
        #expect(lo == e && hi == e)
    }

    /// Over Gaussian data the error of ⟨u, w⟩ — the only estimated term — relative to ‖u‖‖w‖
    /// is small and centred on zero, and the true distance lies within the bounds about as
    /// often as a normal error within ε0 standard deviations: 94 % at the default ε0 = 1.9,
    /// 99.7 % at ε0 = 3.
    @Test(arguments: [96, 768], Metric.allCases)
    func estimatesAreAccurateAndBounded(dimension: Int, metric: Metric) {
        let rows = dimension == 96 ? 2000 : 1000, queries = 10
        var data = gaussian(rows, dim: dimension, mean: 0.5, seed: UInt64(dimension))
        var qs = gaussian(queries, dim: dimension, mean: 0.5, seed: UInt64(dimension) + 1)
        if metric == .cosine {
            data = (0..<rows).flatMap { Distance.normalized(Array(data[$0 * dimension..<($0 + 1) * dimension])) }
            qs = (0..<queries).flatMap { Distance.normalized(Array(qs[$0 * dimension..<($0 + 1) * dimension])) }
        }
        let centroid = mean(data, dim: dimension)
        let q = RaBitQ(dimension: dimension, seed: 99)
        let records = encodeAll(q, data, centroid: centroid)
        let norms = (0..<rows).map { i in (0..<dimension).reduce(0.0) { $0 + pow(Double(data[i * dimension + $1] - centroid[$1]), 2) }.squareRoot() }
        var absError = 0.0, signedError = 0.0, relativeDistanceError = 0.0, inside = 0, insideWide = 0
        for k in 0..<queries {
            let query = Array(qs[k * dimension..<(k + 1) * dimension])
            let (e, lo, hi) = estimateAll(q, records, query: query, centroid: centroid, metric: metric)
            let (_, loWide, hiWide) = estimateAll(q, records, query: query, centroid: centroid, metric: metric, epsilon0: 3)
            let exact = exactAll(data, query: query, dim: dimension, metric: metric)
            // The estimated inner product's partner: q for dot, q − c for the others.
            let w = metric == .dot ? query : zip(query, centroid).map { $0 - $1 }
            let wNorm = dot(w, w).squareRoot()
            // Every metric's estimate is linear in ⟨u, w⟩, with slope −2 (l2) or −1.
            let slope = metric == .l2 ? -2.0 : -1.0
            for i in 0..<rows {
                let err = Double(e[i] - exact[i]) / slope / (norms[i] * wNorm)
                absError += abs(err)
                signedError += err
                relativeDistanceError += abs(Double(e[i] - exact[i])) / max(abs(Double(exact[i])), 1e-6)
                // Slack for the float rounding of the estimate itself.
                let slack = 1e-5 * max(1, abs(exact[i]))
                if exact[i] >= lo[i] - slack && exact[i] <= hi[i] + slack { inside += 1 }
                if exact[i] >= loWide[i] - slack && exact[i] <= hiWide[i] + slack { insideWide += 1 }
            }
        }
        let total = Double(rows * queries)
        let meanAbs = absError / total, bias = signedError / total
        let coverage = Double(inside) / total, coverageWide = Double(insideWide) / total
        print("RaBitQ dim \(dimension) \(metric): mean |err|/(‖u‖‖w‖) \(meanAbs), mean signed \(bias), "
              + "mean relative distance error \(relativeDistanceError / total), "
              + "within bounds \(coverage) (ε0 1.9), \(coverageWide) (ε0 3)")
        // A normal error of σ ≈ sqrt(1 − x0²)/x0/√(P − 1), x0 ≈ 0.8 for Gaussian residuals, has
        // mean |err| ≈ 0.8σ: ≈ 0.053 at P = 128, 0.019 at P = 1024.
        #expect(meanAbs <= (dimension == 96 ? 0.06 : 0.022))
        #expect(abs(bias) <= (dimension == 96 ? 0.005 : 0.002))
        #expect(coverage >= 0.92)
        #expect(coverageWide >= 0.99)
    }

    /// Clustered rows split into IVF partitions, each encoded against its own centroid, 50
    /// queries scanning every partition: re-ranking the 100 best estimates exactly finds most
    /// of the true top 10. With a single partition (centroid = mean of everything) the residuals
    /// are as long as the distances between clusters, so the estimate's error swamps the
    /// differences inside a cluster; that recall is printed, not asserted.
    @Test(arguments: Metric.allCases)
    func rerankingTheBestEstimatesKeepsRecall(metric: Metric) {
        let dim = 96, rows = 20_000, queries = 50
        var all = clustered(rows + queries, dim: dim, seed: 77)
        if metric == .cosine { all = all.map { Distance.normalized($0) } }
        let ivf = IVFIndex(vectors: all.prefix(rows).flatMap { $0 }, ids: (0..<rows).map(UInt64.init), dimension: dim,
                           metric: metric, nlist: 64)
        let q = RaBitQ(dimension: dim, seed: 0xAB17)
        // Records in the index's row order, partition by partition.
        var records: [UInt8] = []
        for p in 0..<ivf.nlist {
            let lo = ivf.offsets[p], hi = ivf.offsets[p + 1]
            records += encodeAll(q, Array(ivf.vectors[lo * dim..<hi * dim]), centroid: Array(ivf.centroids[p * dim..<(p + 1) * dim]))
        }
        let globalCentroid = mean(ivf.vectors, dim: dim)
        let globalRecords = encodeAll(q, ivf.vectors, centroid: globalCentroid)
        var hits = 0, estimateOnlyHits = 0, singlePartitionHits = 0
        for query in all.suffix(queries) {
            let exact = exactAll(ivf.vectors, query: query, dim: dim, metric: metric)
            let want = Set((0..<rows).sorted { (exact[$0], $0) < (exact[$1], $1) }.prefix(10))
            var e: [Float] = []
            for p in 0..<ivf.nlist {
                let lo = ivf.offsets[p], hi = ivf.offsets[p + 1]
                e += estimateAll(q, Array(records[lo * q.recordBytes..<hi * q.recordBytes]), query: query,
                                 centroid: Array(ivf.centroids[p * dim..<(p + 1) * dim]), metric: metric).estimate
            }
            let candidates = (0..<rows).sorted { (e[$0], $0) < (e[$1], $1) }.prefix(100)
            hits += want.intersection(candidates.sorted { (exact[$0], $0) < (exact[$1], $1) }.prefix(10)).count
            estimateOnlyHits += want.intersection(candidates.prefix(10)).count
            let g = estimateAll(q, globalRecords, query: query, centroid: globalCentroid, metric: metric).estimate
            let single = (0..<rows).sorted { (g[$0], $0) < (g[$1], $1) }.prefix(100)
            singlePartitionHits += want.intersection(single.sorted { (exact[$0], $0) < (exact[$1], $1) }.prefix(10)).count
        }
        let recallAt10 = Double(hits) / Double(queries * 10)
        print("RaBitQ \(metric) recall@10, \(ivf.nlist) partitions: \(recallAt10) re-ranking the top 100 estimates, "
              + "\(Double(estimateOnlyHits) / Double(queries * 10)) from estimates alone; one partition: "
              + "\(Double(singlePartitionHits) / Double(queries * 10)) re-ranking the top 100")
        #expect(recallAt10 >= 0.9)
    }

    /// Not asserted: the scan rate at dimension 768, printed in the test output.
    @Test func scanRateAtDimension768() {
        let dim = 768, rows = 50_000
        let q = RaBitQ(dimension: dim, seed: 1)
        var rng = SeededRNG(seed: 2)
        var records = [UInt8](repeating: 0, count: rows * q.recordBytes)
        for i in 0..<rows {
            for b in 0..<q.codeBytes { records[i * q.recordBytes + b] = UInt8.random(in: 0...255, using: &rng) }
            withUnsafeBytes(of: Float(1).bitPattern.littleEndian) { records.replaceSubrange(i * q.recordBytes + q.codeBytes..<i * q.recordBytes + q.codeBytes + 4, with: $0) }
            withUnsafeBytes(of: Float(0.8).bitPattern.littleEndian) { records.replaceSubrange(i * q.recordBytes + q.codeBytes + 4..<i * q.recordBytes + q.codeBytes + 8, with: $0) }
        }
        let query = gaussian(1, dim: dim, seed: 3), centroid = [Float](repeating: 0, count: dim)
        var e = [Float](repeating: 0, count: rows), lo = e
        let clock = ContinuousClock()
        var prepareTime = Duration.zero
        let reps = 5
        let scanTime = clock.measure {
            for _ in 0..<reps {
                var prepared: RaBitQ.Prepared?
                prepareTime += clock.measure {
                    prepared = query.withUnsafeBufferPointer { qp in
                        centroid.withUnsafeBufferPointer { q.prepare(query: qp.baseAddress!, centroid: $0.baseAddress!, metric: .l2) }
                    }
                }
                records.withUnsafeBytes { r in
                    e.withUnsafeMutableBufferPointer { ep in
                        lo.withUnsafeMutableBufferPointer {
                            q.estimate(prepared!, records: r.baseAddress!, count: rows, estimates: ep.baseAddress!, lowerBounds: $0.baseAddress!)
                        }
                    }
                }
            }
        }
        let seconds = Double(scanTime.components.seconds) + Double(scanTime.components.attoseconds) * 1e-18
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        print("RaBitQ scan, dim 768 (\(q.codeBytes) code bytes/row, \(build) build): "
              + "\(Int(Double(rows * reps) / seconds)) rows/s including prepare; prepare \(prepareTime / reps) per query")
        #expect(e.allSatisfy { $0.isFinite })
    }

    /// One set of tables per query (`prepareQuery`, with each row's stored centroid term) gives
    /// the same estimates as tables of `R(q − c)` per partition.
    @Test(arguments: [Metric.l2, .cosine, .dot])
    func perQueryTablesMatchPerPartitionTables(metric: Metric) {
        for dim in [96, 768] {
            let q = RaBitQ(dimension: dim, seed: 9)
            var data = gaussian(500, dim: dim, seed: 10)
            var centroid = gaussian(1, dim: dim, seed: 11)
            var query = gaussian(1, dim: dim, seed: 12)
            if metric == .cosine {
                func unit(_ v: [Float]) -> [Float] { let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
                data = (0..<500).flatMap { unit(Array(data[$0 * dim..<($0 + 1) * dim])) }
                centroid = unit(centroid)
                query = unit(query)
            }
            let records = encodeAll(q, data, centroid: centroid)
            let (e1, l1, _) = estimateAll(q, records, query: query, centroid: centroid, metric: metric)
            let shared = query.withUnsafeBufferPointer { q.prepareQuery($0.baseAddress!) }
            let prepared = centroid.withUnsafeBufferPointer { q.prepare(shared, centroid: $0.baseAddress!, metric: metric) }
            var e2 = [Float](repeating: 0, count: 500), l2 = e2
            records.withUnsafeBytes { r in
                e2.withUnsafeMutableBufferPointer { ep in
                    l2.withUnsafeMutableBufferPointer { lp in
                        q.estimate(prepared, records: r.baseAddress!, count: 500, estimates: ep.baseAddress!, lowerBounds: lp.baseAddress!)
                    }
                }
            }
            let scale = e1.map(abs).max()! + 1
            for i in 0..<500 {
                #expect(abs(e1[i] - e2[i]) <= 1e-3 * scale, "\(metric) dim \(dim) row \(i): \(e1[i]) vs \(e2[i])")
                #expect(abs(l1[i] - l2[i]) <= 1e-3 * scale)
            }
        }
    }
}
