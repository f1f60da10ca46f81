// SegmentContents: everything one segment holds, decoded (the input of `SegmentCodec.encode`
// and the output of `SegmentCodec.decode`).

/// Everything one segment holds, decoded. Rows are in id order of insertion; row `i` has
/// `ids[i]`, the vector `vectors[i*dimension ..< (i+1)*dimension]`, `metadata[i]` and `payloads[i]`.
public struct SegmentContents: Sendable, Equatable {
    /// Floats per vector.
    public var dimension: Int
    /// The metric's wire code (1 L2, 2 cosine, 3 inner product), as recorded in the manifest too.
    public var metric: UInt8
    /// The primary key of each row.
    public var ids: [UInt64]
    /// Row-major float32 vectors, `ids.count * dimension` values.
    public var vectors: [Float]
    /// Per-row metadata; empty when no row has any.
    public var metadata: [Metadata]
    /// Per-row payloads; empty when no row has one.
    public var payloads: [[UInt8]]
    /// The IVF layout, when rows are stored partition by partition.
    public var ivf: IVFLayout?
    /// An HNSW graph over the rows, when the segment carries one.
    public var graph: GraphLayout?
    /// Quantized codes of the rows (IVF segments only), when the segment carries them.
    public var codes: IVFCodes?

    public init(dimension: Int, metric: UInt8, ids: [UInt64] = [], vectors: [Float] = [],
                metadata: [Metadata] = [], payloads: [[UInt8]] = [], ivf: IVFLayout? = nil, graph: GraphLayout? = nil,
                codes: IVFCodes? = nil) {
        self.dimension = dimension
        self.metric = metric
        self.ids = ids
        self.vectors = vectors
        self.metadata = metadata
        self.payloads = payloads
        self.ivf = ivf
        self.graph = graph
        self.codes = codes
    }

    /// The number of rows.
    public var rowCount: Int { ids.count }
}
