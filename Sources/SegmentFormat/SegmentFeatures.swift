// SegmentFeatures: the optional feature bits of a segment header (IVF, HNSW, IVF codes).

/// Optional feature bits of a segment header (a reader that does not know them can still read
/// the segment as flat: vectors and ids are complete either way).
package enum SegmentFeatures {
    /// Rows are stored partition by partition, with IVF sections in the tail.
    public static let ivf: UInt32 = 1
    /// The segment carries an HNSW graph section.
    public static let hnsw: UInt32 = 2
    /// The segment carries quantized IVF codes (code book and codes sections).
    public static let codes: UInt32 = 4
}
