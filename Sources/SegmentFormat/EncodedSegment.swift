// EncodedSegment: the bytes `SegmentCodec.encode` produces and where their tail lies.

/// An encoded segment and where its tail lies (recorded in the manifest, so a reader needs no probe).
public struct EncodedSegment: Sendable {
    /// The object's bytes.
    public var bytes: [UInt8]
    /// Offset of the footer.
    public var footerOffset: UInt64
    /// Offset of the tail: the IVF sections (when present), then footer and trailer.
    public var tailOffset: UInt64
    /// Bytes from `tailOffset` to the end: one ranged read of the tail gets everything a query
    /// needs before it reads partitions.
    public var tailLength: UInt32
}
