// SegmentFooter: a segment's shape (rows, dimension, metric) and section table, and its decoder,
// which checks every section against the object's size and the decoding limits.

/// A segment's footer: its shape and the table of its sections.
package struct SegmentFooter: Sendable, Hashable {
    /// Rows in the segment.
    public var rowCount: UInt64
    /// Floats per vector.
    public var dimension: Int
    /// The metric's wire code.
    public var metric: UInt8
    /// The sections, in the order they are stored.
    public var sections: [SectionDescriptor]

    /// The descriptor of a section, or nil when the segment has none of that kind.
    public func section(_ kind: SectionKind) -> SectionDescriptor? {
        sections.first { $0.kind == kind.rawValue }
    }

    /// Decodes a footer from `bytes`, which lie at `offset` in the object, after checking them
    /// against the trailer's CRC and every section against the object's size and `limits`.
    public static func decode(_ bytes: [UInt8], object: String, offset: UInt64, expectedCRC: UInt32,
                              objectSize: UInt64, limits: DecodingLimits = .default) throws(FormatError) -> SegmentFooter {
        guard !limits.verifyChecksums || crc32c(bytes) == expectedCRC else {
            throw FormatError(.corrupted, object: object, offset: offset, "segment footer checksum mismatch")
        }
        var r = ByteReader(bytes, object: object, baseOffset: offset)
        let count = Int(try r.read(UInt32.self, "section count"))
        try r.expectZero(4, "footer reserved field")
        let rows = try r.read(UInt64.self, "row count")
        let dimension = Int(try r.read(UInt32.self, "dimension"))
        let metric = try r.read(UInt8.self, "metric")
        try r.expectZero(3, "footer reserved bytes")
        guard count <= limits.maxSections else { throw r.error(.limitExceeded, "\(count) sections exceed the limit of \(limits.maxSections)") }
        guard rows <= limits.maxRows else { throw r.error(.limitExceeded, "\(rows) rows exceed the limit of \(limits.maxRows)") }
        guard dimension >= 1, dimension <= limits.maxDimension else {
            throw r.error(.limitExceeded, "dimension \(dimension) is outside 1...\(limits.maxDimension)")
        }
        guard (1...3).contains(metric) else { throw r.error(.corrupted, "unknown metric code \(metric)") }
        var sections: [SectionDescriptor] = []
        sections.reserveCapacity(count)
        for _ in 0..<count {
            let at = r.offset
            let d = SectionDescriptor(kind: try r.read(UInt16.self), flags: try r.read(UInt16.self),
                                      crc: try r.read(UInt32.self), offset: try r.read(UInt64.self),
                                      storedLength: try r.read(UInt64.self), rawLength: try r.read(UInt64.self))
            try r.expectZero(8, "section descriptor reserved field")
            let (end, overflow) = d.offset.addingReportingOverflow(d.storedLength)
            guard !overflow, d.offset >= UInt64(ObjectHeader.size), end <= offset else {
                throw FormatError(.corrupted, object: object, offset: at,
                                  "section \(d.kind) at \(d.offset)+\(d.storedLength) lies outside the data area")
            }
            guard d.rawLength <= limits.maxBlockBytes else {
                throw FormatError(.limitExceeded, object: object, offset: at, "section \(d.kind) declares \(d.rawLength) bytes")
            }
            guard d.isCompressed || d.rawLength == d.storedLength else {
                throw FormatError(.corrupted, object: object, offset: at, "uncompressed section with different stored and raw lengths")
            }
            // LZ4 expands at most 255-fold: refuse a larger declared raw length before anything
            // is allocated for it (the same bound `LZ4Frame.decompress` applies).
            guard !d.isCompressed || d.rawLength / 256 <= d.storedLength else {
                throw FormatError(.corrupted, object: object, offset: at,
                                  "section \(d.kind) of \(d.storedLength) stored bytes cannot expand to \(d.rawLength)")
            }
            guard sections.allSatisfy({ $0.kind != d.kind }) else {
                throw FormatError(.corrupted, object: object, offset: at, "section kind \(d.kind) appears twice")
            }
            if let known = SectionKind(rawValue: d.kind) {
                guard d.flags & ~SectionDescriptor.knownFlags == 0 else {
                    throw FormatError(.unsupportedFeature, object: object, offset: at + 2,
                                      "section \(d.kind) has flag bits 0x\(String(d.flags & ~SectionDescriptor.knownFlags, radix: 16)) this reader does not know")
                }
                guard !d.isCompressed || !known.isStoredRaw else {
                    throw FormatError(.corrupted, object: object, offset: at + 2, "section \(d.kind) must be stored raw, not as an LZ4 frame")
                }
            } else if d.flags & SectionDescriptor.flagRequired != 0 {
                throw FormatError(.unsupportedFeature, object: object, offset: at, "required section kind \(d.kind) is not supported by this reader")
            }
            sections.append(d)
        }
        try r.expectEnd("segment footer")
        let footer = SegmentFooter(rowCount: rows, dimension: dimension, metric: metric, sections: sections)
        guard let ids = footer.section(.ids) else {
            throw FormatError(.corrupted, object: object, offset: offset, "segment has no id section")
        }
        guard ids.rawLength == rows * 8 else {
            throw FormatError(.corrupted, object: object, offset: ids.offset, "id section holds \(ids.rawLength) bytes for \(rows) rows")
        }
        let hasIVF = footer.section(.ivfCentroids) != nil, hasPartitions = footer.section(.ivfPartitions) != nil
        guard hasIVF == hasPartitions else {
            throw FormatError(.corrupted, object: object, offset: offset, "segment has only one of the two IVF sections")
        }
        if hasIVF, ids.isCompressed {
            throw FormatError(.corrupted, object: object, offset: ids.offset, "an IVF segment's ids must be stored raw")
        }
        let hasCodebook = footer.section(.ivfCodebook) != nil, hasCodes = footer.section(.ivfCodes) != nil
        guard hasCodebook == hasCodes, !hasCodes || hasIVF else {
            throw FormatError(.corrupted, object: object, offset: offset,
                              "IVF code sections come as a pair, and only in a segment with IVF sections")
        }
        if let v = footer.section(.vectors) {
            guard v.rawLength == rows * UInt64(dimension) * 4 else {
                throw FormatError(.corrupted, object: object, offset: v.offset, "vector section holds \(v.rawLength) bytes, expected \(rows) × \(dimension) × 4")
            }
        } else if rows > 0 {
            throw FormatError(.corrupted, object: object, offset: offset, "segment with \(rows) rows has no vector section")
        }
        return footer
    }
}
