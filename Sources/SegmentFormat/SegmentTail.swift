// SegmentTail: what one ranged read of a segment's tail yields (footer, IVF layout, code book),
// and its decoder.

/// What one ranged read of a segment's tail yields: the footer and, for IVF segments, the
/// centroids and partition table, so a query can pick partitions before reading any data.
package struct SegmentTail: Sendable {
    /// The footer.
    public var footer: SegmentFooter
    /// The IVF layout, when the segment has one.
    public var ivf: IVFLayout?
    /// The code book of the IVF codes, when the segment has codes this build can read.
    public var codebook: IVFCodebook?

    /// Decodes the bytes from `tailOffset` to the end of a segment of `objectSize` bytes.
    public static func decode(_ tail: [UInt8], tailOffset: UInt64, objectSize: UInt64, object: String,
                              limits: DecodingLimits = .default) throws(FormatError) -> SegmentTail {
        guard tailOffset <= objectSize, UInt64(tail.count) == objectSize - tailOffset, tail.count >= SegmentTrailer.size else {
            throw FormatError(.truncated, object: object, offset: tailOffset + UInt64(tail.count),
                              "the segment tail is \(tail.count) bytes, expected \(objectSize &- tailOffset)")
        }
        let trailer = try SegmentTrailer.decode(Array(tail.suffix(SegmentTrailer.size)), object: object,
                                                objectSize: objectSize, limits: limits)
        guard trailer.footerOffset >= tailOffset else {
            throw FormatError(.corrupted, object: object, offset: trailer.footerOffset, "the footer lies before the tail")
        }
        let fo = Int(trailer.footerOffset - tailOffset)
        let footer = try SegmentFooter.decode(Array(tail[fo..<fo + Int(trailer.footerLength)]), object: object,
                                              offset: trailer.footerOffset, expectedCRC: trailer.footerCRC,
                                              objectSize: objectSize, limits: limits)
        func inTail(_ d: SectionDescriptor) throws(FormatError) -> [UInt8] {
            guard d.offset >= tailOffset else {
                throw FormatError(.corrupted, object: object, offset: d.offset, "IVF section \(d.kind) lies outside the tail")
            }
            let lo = Int(d.offset - tailOffset)
            return try SegmentCodec.unpack(Array(tail[lo..<lo + Int(d.storedLength)]), d, object: object, limits: limits)
        }
        var ivf: IVFLayout?
        if let c = footer.section(.ivfCentroids), let p = footer.section(.ivfPartitions) {
            ivf = try IVFLayout.decode(partitions: inTail(p), centroids: inTail(c), footer: footer, object: object, offset: p.offset)
        }
        var codebook: IVFCodebook?
        if let cb = footer.section(.ivfCodebook) {
            guard let layout = ivf, let cs = footer.section(.ivfCodes), !cs.isCompressed, !cb.isCompressed,
                  cs.rawLength == cs.storedLength else {
                throw FormatError(.corrupted, object: object, offset: cb.offset, "IVF code book without an IVF layout or a raw codes section")
            }
            codebook = try IVFCodebook.decode(inTail(cb), footer: footer, nlist: layout.nlist, object: object, offset: cb.offset)
            if let book = codebook, cs.rawLength != footer.rowCount * UInt64(book.recordBytes(dimension: footer.dimension)) {
                throw FormatError(.corrupted, object: object, offset: cs.offset,
                                  "codes section holds \(cs.rawLength) bytes for \(footer.rowCount) rows of \(book.recordBytes(dimension: footer.dimension)) bytes")
            }
        } else if footer.section(.ivfCodes) != nil {
            throw FormatError(.corrupted, object: object, offset: tailOffset, "segment has IVF codes without their code book")
        }
        return SegmentTail(footer: footer, ivf: ivf, codebook: codebook)
    }
}
