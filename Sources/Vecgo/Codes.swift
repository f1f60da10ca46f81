// Quantized codes of IVF segments: how a writer makes them (1-bit RaBitQ-style and SQ8 codes
// of every row) and how a reader scans them to choose the rows it re-ranks with exact vectors.
import IndexCore
import SegmentFormat

/// Builds and scans the codes of IVF segments (spec/format.md, "IVF codes").
enum Codes {
    /// The seed of every segment's binary-code rotation. Stored per segment, so it could vary;
    /// one value keeps segments comparable and costs nothing.
    static let rotationSeed: UInt64 = 0x5642_5251_4253_4545

    /// Both kinds of codes of `rows` row-major vectors laid out partition by partition:
    /// binary codes against each row's partition centroid, SQ8 codes over the whole segment's
    /// range per dimension. Partitions are encoded on all cores.
    static func build(vectors: [Float], dimension: Int, centroids: [Float], offsets: [Int]) -> IVFCodes {
        let rows = vectors.count / dimension
        let rabitq = RaBitQ(dimension: dimension, seed: rotationSeed)
        let stride = rabitq.recordBytes
        var binary = [UInt8](repeating: 0, count: rows * stride)
        let nlist = offsets.count - 1
        vectors.withUnsafeBufferPointer { v in
            centroids.withUnsafeBufferPointer { c in
                binary.withUnsafeMutableBytes { out in
                    nonisolated(unsafe) let v = v, c = c, out = out  // partitions write disjoint records
                    Background.parallelFor(nlist) { p in
                        var rotated = [Float](repeating: 0, count: rabitq.paddedDimension)
                        rotated.withUnsafeMutableBufferPointer { r in
                            rabitq.rotate(c.baseAddress! + p * dimension, into: r.baseAddress!)
                            for row in offsets[p]..<offsets[p + 1] {
                                rabitq.encodeRecord(v.baseAddress! + row * dimension, centroid: c.baseAddress! + p * dimension,
                                                    rotatedCentroid: r.baseAddress!, into: out.baseAddress! + row * stride)
                            }
                        }
                    }
                }
            }
        }
        let sq8 = vectors.withUnsafeBufferPointer { SQ8Quantizer(training: $0, dimension: dimension) }
        let book = IVFCodebook(kinds: [.binary, .sq8], seed: rotationSeed, paddedDimension: rabitq.paddedDimension,
                               sq8Minimums: sq8.minimums, sq8Scales: sq8.scales)
        return IVFCodes(codebook: book, binary: binary, sq8: sq8.encode(vectors))
    }
}

/// Which codes a search scans before it re-ranks with exact vectors.
public enum CodeScan: Sendable, Hashable {
    /// The smallest codes the segment has (1-bit when present), else exact vectors.
    case automatic
    /// 1-bit codes (falls back to SQ8, then exact vectors, when a segment has none).
    case binary
    /// 8-bit codes (falls back to exact vectors when a segment has none).
    case sq8
    /// Exact vectors of every probed row: the most bytes, no estimate.
    case exact
}
