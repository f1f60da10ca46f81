// The rows of `vecgo-bench scale`: a seeded latent Gaussian mixture any process can generate
// slice by slice, or .fvecs files read in slices.
import Dispatch
import Foundation

/// A seeded Gaussian mixture that looks like real embeddings: clusters of uneven sizes and
/// per-cluster, per-direction scales in a 32-dimensional latent space, mapped to `dimension`
/// dimensions by a fixed random linear map, plus a little isotropic noise. Row `i` is a pure
/// function of the seed and `i`, so any process can generate any slice of the data.
struct LatentMixture: Sendable {
    let dimension: Int
    let latent = 32
    let seed: UInt64
    let weights: [Double]  // cumulative
    let centers: [Float]  // clusters × latent
    let scales: [Float]  // clusters × latent
    let map: [Float]  // dimension × latent
    let noise: Float = 0.1

    init(dimension: Int, clusters: Int, seed: UInt64) {
        self.dimension = dimension
        self.seed = seed
        var rng = BenchRNG(seed)
        var w = (0..<clusters).map { 1 / pow(Double($0 + 1), 0.8) }  // Zipf-like sizes
        w.shuffle(using: &rng)
        let total = w.reduce(0, +)
        var acc = 0.0
        weights = w.map { acc += $0 / total; return acc }
        centers = (0..<clusters * latent).map { _ in 2 * rng.gaussian() }
        // Per cluster an overall scale (0.3…3) times a per-direction one: anisotropic clusters.
        var s: [Float] = []
        for _ in 0..<clusters {
            let overall = exp(Float.random(in: log(0.3)...log(3), using: &rng))
            for _ in 0..<latent { s.append(overall * exp(0.6 * rng.gaussian())) }
        }
        scales = s
        map = (0..<dimension * latent).map { _ in rng.gaussian() / Float(32).squareRoot() }
    }

    /// Writes row `i` (queries use indexes from 2⁶² on) into `out`.
    func row(_ i: UInt64, into out: UnsafeMutablePointer<Float>) {
        var rng = BenchRNG(seed &+ 0x9E37_79B9_7F4A_7C15 &* (i &+ 1))
        let u = Double(rng.next() >> 11) / Double(1 << 53)
        var lo = 0, hi = weights.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if weights[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        var z = [Float](repeating: 0, count: latent)
        for j in 0..<latent { z[j] = centers[lo * latent + j] + scales[lo * latent + j] * rng.gaussian() }
        for d in 0..<dimension {
            var x: Float = 0
            for j in 0..<latent { x += map[d * latent + j] * z[j] }
            out[d] = x + noise * rng.gaussian()
        }
    }

    /// Rows `range`, generated on all cores, row-major.
    func rows(_ range: Range<UInt64>) -> [Float] {
        var out = [Float](repeating: 0, count: range.count * dimension)
        out.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let b = buffer
            let chunks = (range.count + 1023) / 1024
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for r in c * 1024..<min(range.count, (c + 1) * 1024) {
                    row(range.lowerBound + UInt64(r), into: b.baseAddress! + r * dimension)
                }
            }
        }
        return out
    }

    static let queryBase: UInt64 = 1 << 62
}

/// SplitMix64 with a Gaussian draw (Box–Muller).
struct BenchRNG: RandomNumberGenerator {
    private var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

/// Where the rows come from: the generator, or .fvecs files read in slices.
struct ScaleData: Sendable {
    let dimension: Int
    let count: Int
    let mixture: LatentMixture?
    let file: (path: String, rows: Int)?

    init(_ o: ScaleBench) throws {
        if let base = o.base {
            let size = try FileManager.default.attributesOfItem(atPath: base)[.size] as? Int ?? 0
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: base))
            defer { try? handle.close() }
            let head = try handle.read(upToCount: 4) ?? Data()
            guard head.count == 4 else { throw BenchError(description: "\(base) is empty") }
            let d = Int(head.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) })
            guard d > 0, size % (4 + 4 * d) == 0 else { throw BenchError(description: "\(base) is not an .fvecs file of whole rows") }
            dimension = d
            count = min(size / (4 + 4 * d), o.rows ?? Int.max)
            mixture = nil
            file = (base, count)
        } else {
            dimension = o.dimension
            count = o.rows ?? 100_000
            mixture = LatentMixture(dimension: o.dimension, clusters: o.clusters, seed: o.seed)
            file = nil
        }
    }

    /// Rows `range`, row-major.
    func rows(_ range: Range<Int>) throws -> [Float] {
        if let mixture { return mixture.rows(UInt64(range.lowerBound)..<UInt64(range.upperBound)) }
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: file!.path))
        defer { try? handle.close() }
        let rowBytes = 4 + 4 * dimension
        try handle.seek(toOffset: UInt64(range.lowerBound * rowBytes))
        let data = try handle.read(upToCount: range.count * rowBytes) ?? Data()
        guard data.count == range.count * rowBytes else { throw BenchError(description: "\(file!.path) ends early") }
        var out = [Float](repeating: 0, count: range.count * dimension)
        data.withUnsafeBytes { raw in
            for r in 0..<range.count {
                for j in 0..<dimension {
                    out[r * dimension + j] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: r * rowBytes + 4 + 4 * j, as: UInt32.self)))
                }
            }
        }
        return out
    }
}
