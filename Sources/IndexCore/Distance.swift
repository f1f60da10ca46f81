// Metrics and distance kernels over float32 vectors (AVX-512, AVX2+FMA or portable C, chosen at run time).
internal import CVecgoNative

/// How similarity is measured. Smaller distances are closer for every metric.
public enum Metric: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Squared Euclidean distance.
    case l2 = 1
    /// Cosine distance, `1 - cos(a, b)`; vectors are normalised when they enter the index.
    case cosine = 2
    /// Negative inner product (so that smaller is closer).
    case dot = 3

    public var description: String {
        switch self {
        case .l2: "l2"
        case .cosine: "cosine"
        case .dot: "dot"
        }
    }

    /// Parses `l2`, `cosine` or `dot`.
    public init?(name: String) {
        guard let m = Metric.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = m
    }
}

/// Distance kernels over float32 vectors, dispatched once at run time to AVX-512, AVX2+FMA,
/// NEON or a portable implementation.
public enum Distance {
    /// The kernel level in use: `portable`, `avx2+fma`, `avx512f` or `neon`.
    public static var kernelName: String {
        switch vecgo_kernel_level() {
        case 1: "avx2+fma"
        case 2: "avx512f"
        case 3: "neon"
        default: "portable"
        }
    }

    /// ``batch(_:query:base:count:dimension:out:)`` computed by the kernels of `level` (0
    /// portable, 1 AVX2+FMA, 2 AVX-512; capped at what this CPU has) without changing the ones
    /// in use. Returns the level used. For tests that compare every implementation with the
    /// reference.
    @_spi(Testing)
    @discardableResult
    public static func batch(_ metric: Metric, level: Int, query: UnsafePointer<Float>, base: UnsafePointer<Float>,
                             count: Int, dimension: Int, out: UnsafeMutablePointer<Float>) -> Int {
        let used = Int(vecgo_batch_at_level(Int32(level), metric == .l2 ? 0 : 1, query, base, count, dimension, out))
        switch metric {
        case .l2: break
        case .cosine: for i in 0..<count { out[i] = 1 - out[i] }
        case .dot: for i in 0..<count { out[i] = -out[i] }
        }
        return used
    }

    /// Squared Euclidean distance.
    @inlinable
    public static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        _l2(a, b, n)
    }

    /// Inner product.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        _dot(a, b, n)
    }

    /// The distance under `metric` of two vectors of `n` floats (cosine expects normalised inputs).
    @inlinable
    public static func distance(_ metric: Metric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        switch metric {
        case .l2: _l2(a, b, n)
        case .cosine: 1 - _dot(a, b, n)
        case .dot: -_dot(a, b, n)
        }
    }

    /// Distances from one query to `count` contiguous vectors of `dimension` floats, into `out`.
    public static func batch(_ metric: Metric, query: UnsafePointer<Float>, base: UnsafePointer<Float>,
                             count: Int, dimension: Int, out: UnsafeMutablePointer<Float>) {
        switch metric {
        case .l2:
            vecgo_l2sq_batch_f32(query, base, count, dimension, out)
        case .cosine:
            vecgo_dot_batch_f32(query, base, count, dimension, out)
            for i in 0..<count { out[i] = 1 - out[i] }
        case .dot:
            vecgo_dot_batch_f32(query, base, count, dimension, out)
            for i in 0..<count { out[i] = -out[i] }
        }
    }

    /// Returns `v` scaled to unit length (unchanged when its norm is zero).
    public static func normalized(_ v: [Float]) -> [Float] {
        let norm = v.withUnsafeBufferPointer { p in _dot(p.baseAddress!, p.baseAddress!, p.count) }.squareRoot()
        guard norm > 0 else { return v }
        return v.map { $0 / norm }
    }

    @usableFromInline static func _l2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        vecgo_l2sq_f32(a, b, n)
    }
    @usableFromInline static func _dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        vecgo_dot_f32(a, b, n)
    }
}
