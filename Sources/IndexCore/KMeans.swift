// k-means (Lloyd's, k-means++ seeding, on a bounded sample) for IVF centroids.

/// Lloyd's k-means with k-means++ seeding, run on a sample of at most `sampleSize` rows and a
/// bounded number of iterations.
public enum KMeans {
    /// Trains `k` centroids on `count` row-major vectors of `dimension` floats.
    ///
    /// - Returns: `k × dimension` centroid floats (fewer rows than `k` when there are fewer
    ///   distinct points than `k`).
    public static func train(_ vectors: UnsafeBufferPointer<Float>, dimension: Int, k: Int, iterations: Int = 20,
                             sampleSize: Int = 65_536, seed: UInt64 = 0x4B4D) -> [Float] {
        let count = vectors.count / dimension
        precondition(k > 0 && dimension > 0)
        guard count > 0 else { return [] }
        var rng = SplitMix64(seed: seed)
        // A sample without replacement (partial Fisher-Yates on row numbers).
        var rows = Array(0..<count)
        let n = min(count, max(sampleSize, k))
        for i in 0..<n { rows.swapAt(i, Int.random(in: i..<count, using: &rng)) }
        var sample = [Float](repeating: 0, count: n * dimension)
        sample.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                (s.baseAddress! + i * dimension).update(from: vectors.baseAddress! + rows[i] * dimension, count: dimension)
            }
        }
        let k = min(k, n)
        var centroids = seedPlusPlus(sample, n: n, dimension: dimension, k: k, rng: &rng)
        var assignment = [Int](repeating: 0, count: n)
        for _ in 0..<iterations {
            let changed = sample.withUnsafeBufferPointer { s in
                assign(s, dimension: dimension, centroids: centroids, metric: .l2, into: &assignment)
            }
            var sums = [Double](repeating: 0, count: k * dimension)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = assignment[i]
                counts[c] += 1
                for j in 0..<dimension { sums[c * dimension + j] += Double(sample[i * dimension + j]) }
            }
            for c in 0..<k {
                if counts[c] == 0 {
                    // An empty cluster takes a random sample point, so no centroid is wasted.
                    let r = Int.random(in: 0..<n, using: &rng)
                    for j in 0..<dimension { centroids[c * dimension + j] = sample[r * dimension + j] }
                } else {
                    for j in 0..<dimension { centroids[c * dimension + j] = Float(sums[c * dimension + j] / Double(counts[c])) }
                }
            }
            if changed == 0 { break }
        }
        return centroids
    }

    /// Sets `assignment[i]` to the centroid nearest row `i` of `vectors` (ties to the lower
    /// index), spreading the rows over all cores. Returns how many assignments changed.
    public static func assign(_ vectors: UnsafeBufferPointer<Float>, dimension: Int, centroids: [Float], metric: Metric,
                              into assignment: inout [Int]) -> Int {
        let count = vectors.count / dimension, k = centroids.count / dimension
        precondition(assignment.count == count && k > 0)
        let chunk = 512
        let chunks = (count + chunk - 1) / chunk
        var changedPerChunk = [Int](repeating: 0, count: chunks)
        centroids.withUnsafeBufferPointer { c in
            assignment.withUnsafeMutableBufferPointer { a in
                changedPerChunk.withUnsafeMutableBufferPointer { changed in
                    // Disjoint rows per chunk: no two workers write the same element.
                    nonisolated(unsafe) let a = a, changed = changed, c = c, vectors = vectors
                    Background.parallelFor(chunks) { w in
                        var d = [Float](repeating: 0, count: k)
                        d.withUnsafeMutableBufferPointer { out in
                            for i in w * chunk..<min(count, (w + 1) * chunk) {
                                Distance.batch(metric, query: vectors.baseAddress! + i * dimension, base: c.baseAddress!,
                                               count: k, dimension: dimension, out: out.baseAddress!)
                                var best = 0
                                for j in 1..<k where out[j] < out[best] { best = j }
                                if a[i] != best { changed[w] += 1 }
                                a[i] = best
                            }
                        }
                    }
                }
            }
        }
        return changedPerChunk.reduce(0, +)
    }

    /// k-means++: each next seed drawn with probability proportional to squared distance.
    static func seedPlusPlus(_ sample: [Float], n: Int, dimension: Int, k: Int, rng: inout SplitMix64) -> [Float] {
        var centroids: [Float] = []
        centroids.reserveCapacity(k * dimension)
        let first = Int.random(in: 0..<n, using: &rng)
        centroids += sample[first * dimension..<(first + 1) * dimension]
        var nearest = [Float](repeating: .infinity, count: n)
        sample.withUnsafeBufferPointer { s in
            for c in 0..<k - 1 {
                // Each row's distance to the newest seed, rows spread over all cores.
                let chunk = 4096, chunks = (n + chunk - 1) / chunk
                var totals = [Double](repeating: 0, count: chunks)
                centroids.withUnsafeBufferPointer { cb in
                    nearest.withUnsafeMutableBufferPointer { near in
                        totals.withUnsafeMutableBufferPointer { tot in
                            nonisolated(unsafe) let latest = cb.baseAddress! + c * dimension, s = s, near = near, tot = tot
                            Background.parallelFor(chunks) { w in
                                var t = 0.0
                                for i in w * chunk..<min(n, (w + 1) * chunk) {
                                    let d = Distance.l2Squared(s.baseAddress! + i * dimension, latest, dimension)
                                    if d < near[i] { near[i] = d }
                                    t += Double(near[i])
                                }
                                tot[w] = t
                            }
                        }
                    }
                }
                let total = totals.reduce(0, +)
                var pick = 0
                if total > 0 {
                    var target = Double.random(in: 0..<total, using: &rng)
                    for i in 0..<n {
                        target -= Double(nearest[i])
                        if target < 0 { pick = i; break }
                    }
                } else {
                    pick = Int.random(in: 0..<n, using: &rng)
                }
                centroids += sample[pick * dimension..<(pick + 1) * dimension]
            }
        }
        return centroids
    }
}
