// SQ8: 8-bit scalar quantisation of vectors and approximate scans over the codes.
internal import CVecgoNative

/// 8-bit scalar quantisation: each dimension's range `[min, max]` split into 256 steps, so a
/// vector takes `dimension` bytes instead of `4 × dimension`. Scans over codes are approximate;
/// callers re-rank the best candidates with float32 vectors.
public struct SQ8Quantizer: Sendable, Hashable {
    /// Floats per vector.
    public let dimension: Int
    /// Each dimension's minimum.
    public let minimums: [Float]
    /// Each dimension's step: `(max - min) / 255` (1 when the dimension is constant).
    public let scales: [Float]

    /// Learns the per-dimension ranges of row-major `vectors`.
    public init(training vectors: UnsafeBufferPointer<Float>, dimension: Int) {
        self.dimension = dimension
        var lo = [Float](repeating: .infinity, count: dimension), hi = [Float](repeating: -.infinity, count: dimension)
        let rows = vectors.count / dimension
        for r in 0..<rows {
            for j in 0..<dimension {
                let x = vectors[r * dimension + j]
                if x < lo[j] { lo[j] = x }
                if x > hi[j] { hi[j] = x }
            }
        }
        if rows == 0 { lo = [Float](repeating: 0, count: dimension); hi = lo }
        minimums = lo
        scales = zip(lo, hi).map { $1 > $0 ? ($1 - $0) / 255 : 1 }
    }

    /// Rebuilds a quantizer from stored parameters.
    public init(minimums: [Float], scales: [Float]) {
        precondition(minimums.count == scales.count)
        dimension = minimums.count
        self.minimums = minimums
        self.scales = scales
    }

    /// The codes of row-major `vectors`, values clamped to the trained range.
    public func encode(_ vectors: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: vectors.count)
        for i in 0..<vectors.count {
            let j = i % dimension
            let q = ((vectors[i] - minimums[j]) / scales[j]).rounded()
            out[i] = UInt8(max(0, min(255, q)))
        }
        return out
    }

    /// Approximate distances under `metric` from `query` to `count` rows of codes.
    public func distances(_ metric: Metric, query: [Float], codes: UnsafeBufferPointer<UInt8>, out: UnsafeMutableBufferPointer<Float>) {
        let count = codes.count / dimension
        switch metric {
        case .l2:
            let qm = zip(query, minimums).map { $0 - $1 }
            qm.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { s in
                    vecgo_sq8_l2_batch(q.baseAddress!, s.baseAddress!, codes.baseAddress!, count, dimension, out.baseAddress!)
                }
            }
        case .cosine, .dot:
            let qs = zip(query, scales).map { $0 * $1 }
            let offset = zip(query, minimums).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            qs.withUnsafeBufferPointer { q in
                vecgo_sq8_dot_batch(q.baseAddress!, codes.baseAddress!, count, dimension, out.baseAddress!)
            }
            for i in 0..<count { out[i] = metric == .dot ? -(out[i] + offset) : 1 - (out[i] + offset) }
        }
    }
}
