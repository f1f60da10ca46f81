// SectionKind: the kinds of sections a segment holds, with their wire values, and which are
// always stored raw (spec/format.md, "Sections").

/// The kinds of segment sections (spec/format.md, "Sections").
package enum SectionKind: UInt16, Sendable, CaseIterable {
    /// Raw little-endian float32 vectors, row-major, uncompressed, 64-byte aligned.
    case vectors = 1
    /// One u64 primary key per row.
    case ids = 2
    /// Per-row typed metadata.
    case metadata = 3
    /// Per-row opaque payloads.
    case payloads = 4
    /// IVF centroids: `nlist × dimension` float32, uncompressed, in the segment's tail.
    case ivfCentroids = 5
    /// IVF partition offsets and per-partition checksums, in the segment's tail.
    case ivfPartitions = 6
    /// An HNSW graph over the rows.
    case hnswGraph = 7
    /// The code book of the IVF codes (kinds, parameters, block checksums), in the tail.
    case ivfCodebook = 8
    /// Quantized codes of the rows, partition by partition (spec/format.md, "IVF codes").
    case ivfCodes = 9

    /// Kinds a reader addresses by byte range, so they are never LZ4 frames (spec/format.md,
    /// "Sections"). The ids of an IVF segment are raw too, a rule of the layout, not the kind.
    var isStoredRaw: Bool {
        switch self {
        case .vectors, .ivfCentroids, .ivfPartitions, .ivfCodebook, .ivfCodes: true
        case .ids, .metadata, .payloads, .hnswGraph: false
        }
    }
}
