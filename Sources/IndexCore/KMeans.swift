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
        var distances = [Float](repeating: 0, count: k)
        for _ in 0..<iterations {
            var changed = 0
            sample.withUnsafeBufferPointer { s in
                centroids.withUnsafeBufferPointer { c in
                    distances.withUnsafeMutableBufferPointer { d in
                        for i in 0..<n {
                            Distance.batch(.l2, query: s.baseAddress! + i * dimension, base: c.baseAddress!, count: k,
                                           dimension: dimension, out: d.baseAddress!)
                            var best = 0
                            for j in 1..<k where d[j] < d[best] { best = j }
                            if assignment[i] != best { changed += 1 }
                            assignment[i] = best
                        }
                    }
                }
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

    /// k-means++: each next seed drawn with probability proportional to squared distance.
    static func seedPlusPlus(_ sample: [Float], n: Int, dimension: Int, k: Int, rng: inout SplitMix64) -> [Float] {
        var centroids: [Float] = []
        centroids.reserveCapacity(k * dimension)
        let first = Int.random(in: 0..<n, using: &rng)
        centroids += sample[first * dimension..<(first + 1) * dimension]
        var nearest = [Float](repeating: .infinity, count: n)
        sample.withUnsafeBufferPointer { s in
            for c in 0..<k - 1 {
                var total = 0.0
                centroids.withUnsafeBufferPointer { cb in
                    let latest = cb.baseAddress! + c * dimension
                    for i in 0..<n {
                        let d = Distance.l2Squared(s.baseAddress! + i * dimension, latest, dimension)
                        if d < nearest[i] { nearest[i] = d }
                        total += Double(nearest[i])
                    }
                }
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
