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

/// The kinds of segment sections (spec/format.md, "Sections").
public enum SectionKind: UInt16, Sendable, CaseIterable {
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

/// Optional feature bits of a segment header (a reader that does not know them can still read
/// the segment as flat: vectors and ids are complete either way).
public enum SegmentFeatures {
    /// Rows are stored partition by partition, with IVF sections in the tail.
    public static let ivf: UInt32 = 1
    /// The segment carries an HNSW graph section.
    public static let hnsw: UInt32 = 2
    /// The segment carries quantized IVF codes (code book and codes sections).
    public static let codes: UInt32 = 4
}

/// Where one section lies in a segment and how to check and decode it.
public struct SectionDescriptor: Sendable, Hashable {
    static let size = 40
    /// Flag bit: the stored bytes are one LZ4 frame.
    static let flagLZ4: UInt16 = 1
    /// Flag bit: a reader that does not know this kind must refuse the segment.
    static let flagRequired: UInt16 = 2
    /// Every flag bit this build knows; another bit on a known kind is `unsupportedFeature`.
    static let knownFlags: UInt16 = flagLZ4 | flagRequired

    /// The section kind's wire value (may be one this build does not know).
    public var kind: UInt16
    /// Flag bits (LZ4, required).
    public var flags: UInt16
    /// CRC32C of the stored bytes.
    public var crc: UInt32
    /// Offset of the stored bytes in the object.
    public var offset: UInt64
    /// Length of the stored bytes.
    public var storedLength: UInt64
    /// Length after decompression (equal to `storedLength` when not compressed).
    public var rawLength: UInt64

    /// Whether the stored bytes are an LZ4 frame.
    public var isCompressed: Bool { flags & Self.flagLZ4 != 0 }
    /// The byte range of the stored section within the object.
    public var range: Range<UInt64> { offset..<offset + storedLength }
}

/// The fixed 32-byte trailer at the end of every segment: where the footer is.
public struct SegmentTrailer: Sendable, Hashable {
    /// The trailer's size in bytes.
    public static let size = 32
    static let magic: [UInt8] = Array("VGSEGEND".utf8)

    /// Offset of the footer in the object.
    public var footerOffset: UInt64
    /// Length of the footer in bytes.
    public var footerLength: UInt32
    /// CRC32C of the footer bytes.
    public var footerCRC: UInt32

    /// Decodes the last 32 bytes of a segment of `objectSize` bytes. A reader that has read the
    /// header passes its version as `headerVersion`: a trailer naming another version is corrupt.
    public static func decode(_ bytes: [UInt8], object: String, objectSize: UInt64, headerVersion: UInt16? = nil,
                              limits: DecodingLimits = .default) throws(FormatError) -> SegmentTrailer {
        let start = objectSize >= UInt64(size) ? objectSize - UInt64(size) : 0
        guard bytes.count == size else {
            throw FormatError(.truncated, object: object, offset: start, "segment of \(objectSize) bytes is too short for its trailer")
        }
        var r = ByteReader(bytes, object: object, baseOffset: start)
        let footerOffset = try r.read(UInt64.self)
        let footerLength = try r.read(UInt32.self)
        let footerCRC = try r.read(UInt32.self)
        let version = try r.read(UInt16.self)
        let reserved = try r.read(UInt16.self)
        let trailerCRC = try r.read(UInt32.self)
        guard Array(bytes[24..<32]) == magic else {
            throw FormatError(.corrupted, object: object, offset: start + 24, "bad segment trailer magic")
        }
        guard !limits.verifyChecksums || trailerCRC == crc32c(bytes[0..<20]), reserved == 0 else {
            throw FormatError(.corrupted, object: object, offset: start + 20, "segment trailer checksum mismatch")
        }
        if let headerVersion, version != headerVersion {
            throw FormatError(.corrupted, object: object, offset: start + 16,
                              "trailer format version \(version) differs from the header's \(headerVersion)")
        }
        _ = try FormatVersion.decode(version, object: object, offset: start + 16)
        guard footerOffset >= UInt64(ObjectHeader.size), footerOffset <= start,
              start - footerOffset == UInt64(footerLength) else {
            throw FormatError(.corrupted, object: object, offset: start,
                              "footer at \(footerOffset)+\(footerLength) does not end where the trailer starts (\(start))")
        }
        return SegmentTrailer(footerOffset: footerOffset, footerLength: footerLength, footerCRC: footerCRC)
    }
}

/// A segment's footer: its shape and the table of its sections.
public struct SegmentFooter: Sendable, Hashable {
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

/// Encodes and decodes segment objects (spec/format.md, "Segment").
public enum SegmentCodec {
    static let magic: [UInt8] = Array("VECGOSEG".utf8)
    static let sectionAlignment = 64

    /// Encodes `contents` as a format-v1 segment. Output is deterministic: equal contents give equal bytes.
    public static func encode(_ contents: SegmentContents) throws(FormatError) -> EncodedSegment {
        let rows = contents.rowCount
        guard contents.dimension >= 1, contents.vectors.count == rows * contents.dimension,
              contents.metadata.isEmpty || contents.metadata.count == rows,
              contents.payloads.isEmpty || contents.payloads.count == rows,
              (1...3).contains(contents.metric) else {
            throw FormatError(.invalidInput, object: "", offset: 0, "segment contents are inconsistent")
        }
        var ivf = contents.ivf
        if let layout = ivf {
            guard layout.nlist >= 1, layout.offsets.first == 0, layout.offsets.last == UInt64(rows),
                  zip(layout.offsets, layout.offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
                  layout.centroids.count == layout.nlist * contents.dimension else {
                throw FormatError(.invalidInput, object: "", offset: 0, "IVF layout does not fit the rows")
            }
        }
        if let g = contents.graph {
            guard g.levels.count == rows, g.level0.count == rows * (2 * g.m + 1), g.upper.count == rows else {
                throw FormatError(.invalidInput, object: "", offset: 0, "graph does not fit the rows")
            }
        }
        if let codes = contents.codes {
            let book = codes.codebook, d = contents.dimension
            let binaryOK = book.kinds.contains(.binary)
                ? book.paddedDimension == IVFCodebook.paddedDimension(for: d) && codes.binary.count == rows * book.stride(.binary, dimension: d)
                : book.paddedDimension == 0 && book.seed == 0 && codes.binary.isEmpty
            let sq8OK = book.kinds.contains(.sq8)
                ? codes.sq8.count == rows * d && book.sq8Minimums.count == d && book.sq8Scales.count == d
                    && book.sq8Minimums.allSatisfy(\.isFinite) && book.sq8Scales.allSatisfy({ $0.isFinite && $0 > 0 })
                : codes.sq8.isEmpty && book.sq8Minimums.isEmpty && book.sq8Scales.isEmpty
            guard ivf != nil, !book.kinds.isEmpty, book.kinds.isSubset(of: .known), binaryOK, sq8OK else {
                throw FormatError(.invalidInput, object: "", offset: 0, "IVF codes do not fit the rows (codes need an IVF layout)")
            }
        }
        var w = ByteWriter(capacity: contents.vectors.count * 4 + 4096)
        let features = (ivf == nil ? 0 : SegmentFeatures.ivf) | (contents.graph == nil ? 0 : SegmentFeatures.hnsw)
            | (contents.codes == nil ? 0 : SegmentFeatures.codes)
        ObjectHeader(magic: magic, version: .v1, optionalFeatures: features).encode(into: &w)
        var sections: [SectionDescriptor] = []

        func add(_ kind: SectionKind, raw: [UInt8], compress: Bool, required: Bool = true) {
            w.pad(to: sectionAlignment)
            let stored = compress ? LZ4Frame.compress(raw) : raw
            let useLZ4 = compress && stored.count < raw.count
            let bytes = useLZ4 ? stored : raw
            let flags = (required ? SectionDescriptor.flagRequired : 0) | (useLZ4 ? SectionDescriptor.flagLZ4 : 0)
            sections.append(SectionDescriptor(kind: kind.rawValue, flags: flags,
                                              crc: crc32c(bytes), offset: UInt64(w.count),
                                              storedLength: UInt64(bytes.count), rawLength: UInt64(raw.count)))
            w.write(bytes: bytes)
        }

        // Vectors go straight into the object (no second copy of the largest section); checksums
        // over them are taken from there.
        var vectorStart = w.count
        if rows > 0 {
            w.pad(to: sectionAlignment)
            vectorStart = w.count
            w.write(floats: contents.vectors)
            sections.append(SectionDescriptor(kind: SectionKind.vectors.rawValue, flags: SectionDescriptor.flagRequired,
                                              crc: crc32c(w.bytes[vectorStart...]), offset: UInt64(vectorStart),
                                              storedLength: UInt64(w.count - vectorStart), rawLength: UInt64(w.count - vectorStart)))
        }
        let vectorBytes = vectorStart..<vectorStart + contents.vectors.count * 4
        var ids = ByteWriter(capacity: rows * 8)
        for id in contents.ids { ids.write(id) }
        // IVF segments keep ids raw, so one partition's ids are one range that can be checked alone.
        add(.ids, raw: ids.bytes, compress: ivf == nil)
        if contents.metadata.contains(where: { !$0.isEmpty }) {
            add(.metadata, raw: try encodeMetadata(contents.metadata), compress: true)
        }
        if contents.payloads.contains(where: { !$0.isEmpty }) {
            add(.payloads, raw: encodePayloads(contents.payloads), compress: true)
        }
        if let g = contents.graph {
            add(.hnswGraph, raw: g.encode(), compress: true, required: false)
        }
        // Codes lie in the data area, partition by partition, each partition's blocks one range.
        var codebook: IVFCodebook?
        if let codes = contents.codes, let layout = ivf {
            let (section, book) = codes.encodeSection(layout: layout, ids: contents.ids, vectorBytes: w.bytes[vectorBytes],
                                                      dimension: contents.dimension)
            add(.ivfCodes, raw: section, compress: false, required: false)
            codebook = book
        }
        // The tail: IVF sections (when present), footer and trailer, read together with one ranged read.
        var tailOffset: UInt64?
        if var layout = ivf {
            let ib = ids.bytes
            let dim4 = contents.dimension * 4, v0 = vectorBytes.lowerBound
            layout.vectorCRCs = (0..<layout.nlist).map { p in
                crc32c(w.bytes[v0 + layout.rows(p).lowerBound * dim4..<v0 + layout.rows(p).upperBound * dim4])
            }
            layout.idCRCs = (0..<layout.nlist).map { p in crc32c(ib[layout.rows(p).lowerBound * 8..<layout.rows(p).upperBound * 8]) }
            var c = ByteWriter(capacity: layout.centroids.count * 4)
            c.write(floats: layout.centroids)
            add(.ivfCentroids, raw: c.bytes, compress: false, required: false)
            tailOffset = sections.last!.offset
            add(.ivfPartitions, raw: layout.encodePartitions(), compress: false, required: false)
            if let codebook { add(.ivfCodebook, raw: codebook.encode(dimension: contents.dimension), compress: false, required: false) }
            ivf = layout
        }

        w.pad(to: 8)
        let footerOffset = UInt64(w.count)
        let tailStart = tailOffset ?? footerOffset
        var f = ByteWriter()
        f.write(UInt32(sections.count))
        f.write(UInt32(0))
        f.write(UInt64(rows))
        f.write(UInt32(contents.dimension))
        f.write(contents.metric)
        f.write(bytes: [0, 0, 0])
        for s in sections {
            f.write(s.kind); f.write(s.flags); f.write(s.crc)
            f.write(s.offset); f.write(s.storedLength); f.write(s.rawLength)
            f.write(UInt64(0))
        }
        w.write(bytes: f.bytes)
        let trailerStart = w.count
        w.write(footerOffset)
        w.write(UInt32(f.count))
        w.write(crc32c(f.bytes))
        w.write(FormatVersion.v1.rawValue)
        w.write(UInt16(0))
        w.write(crc32c(w.bytes[trailerStart..<trailerStart + 20]))
        w.write(bytes: SegmentTrailer.magic)
        return EncodedSegment(bytes: w.bytes, footerOffset: footerOffset, tailOffset: tailStart,
                              tailLength: UInt32(UInt64(w.count) - tailStart))
    }

    /// Decodes a whole segment, checking every checksum.
    public static func decode(_ bytes: [UInt8], object: String, limits: DecodingLimits = .default) throws(FormatError) -> SegmentContents {
        var r = ByteReader(bytes, object: object)
        let header = try ObjectHeader.decode(&r, magic: magic, kind: "segment", knownRequired: FeatureFlags.knownRequiredInSegments,
                                             limits: limits)
        let size = UInt64(bytes.count)
        guard bytes.count >= ObjectHeader.size + SegmentTrailer.size else {
            throw FormatError(.truncated, object: object, offset: size, "segment of \(size) bytes is too short")
        }
        let trailer = try SegmentTrailer.decode(Array(bytes[(bytes.count - SegmentTrailer.size)...]), object: object,
                                               objectSize: size, headerVersion: header.version.rawValue, limits: limits)
        let fo = Int(trailer.footerOffset)
        let footer = try SegmentFooter.decode(Array(bytes[fo..<fo + Int(trailer.footerLength)]), object: object,
                                              offset: trailer.footerOffset, expectedCRC: trailer.footerCRC,
                                              objectSize: size, limits: limits)
        try checkPadding(bytes, footer: footer, footerOffset: trailer.footerOffset, object: object)
        try checkFeatureBits(header.optionalFeatures, footer: footer, object: object)
        func stored(_ d: SectionDescriptor) -> [UInt8] { Array(bytes[Int(d.offset)..<Int(d.offset + d.storedLength)]) }
        var contents = SegmentContents(dimension: footer.dimension, metric: footer.metric)
        if let d = footer.section(.vectors) {
            contents.vectors = try decodeVectors(stored(d), d, footer: footer, object: object, limits: limits)
        }
        guard let idSection = footer.section(.ids) else {
            throw FormatError(.corrupted, object: object, offset: trailer.footerOffset, "segment has no id section")
        }
        contents.ids = try decodeIDs(stored(idSection), idSection, footer: footer, object: object, limits: limits)
        if let d = footer.section(.metadata) {
            contents.metadata = try decodeMetadata(stored(d), d, footer: footer, object: object, limits: limits)
        }
        if let d = footer.section(.payloads) {
            contents.payloads = try decodePayloads(stored(d), d, footer: footer, object: object, limits: limits)
        }
        if let c = footer.section(.ivfCentroids), let p = footer.section(.ivfPartitions) {
            let layout = try IVFLayout.decode(partitions: unpack(stored(p), p, object: object, limits: limits),
                                              centroids: unpack(stored(c), c, object: object, limits: limits),
                                              footer: footer, object: object, offset: p.offset)
            if let v = footer.section(.vectors) {
                try checkPartitions(layout, vectors: stored(v), ids: stored(idSection), footer: footer, object: object,
                                    vectorOffset: v.offset, limits: limits)
            }
            contents.ivf = layout
        } else if footer.section(.ivfCentroids) != nil || footer.section(.ivfPartitions) != nil {
            throw FormatError(.corrupted, object: object, offset: trailer.footerOffset, "segment has only one of the two IVF sections")
        }
        if let g = footer.section(.hnswGraph) {
            contents.graph = try GraphLayout.decode(unpack(stored(g), g, object: object, limits: limits), footer: footer,
                                                    object: object, offset: g.offset)
        }
        let codebookSection = footer.section(.ivfCodebook), codesSection = footer.section(.ivfCodes)
        if let cb = codebookSection, let cs = codesSection {
            guard let layout = contents.ivf, !cb.isCompressed, !cs.isCompressed else {
                throw FormatError(.corrupted, object: object, offset: cs.offset, "IVF codes need an IVF layout and are stored raw")
            }
            if let book = try IVFCodebook.decode(unpack(stored(cb), cb, object: object, limits: limits), footer: footer,
                                                 nlist: layout.nlist, object: object, offset: cb.offset) {
                let vectorBytes = try footer.section(.vectors).map { d throws(FormatError) in try unpack(stored(d), d, object: object, limits: limits) }
                contents.codes = try IVFCodes.decodeSection(unpack(stored(cs), cs, object: object, limits: limits), codebook: book,
                                                            layout: layout, ids: contents.ids, vectorBytes: vectorBytes,
                                                            dimension: footer.dimension, object: object, offset: cs.offset,
                                                            verify: limits.verifyChecksums)
            }
        } else if codebookSection != nil || codesSection != nil {
            throw FormatError(.corrupted, object: object, offset: trailer.footerOffset, "segment has only one of the two IVF code sections")
        }
        return contents
    }

    /// The header's optional bits this build knows must agree with the sections: IVF exactly
    /// when both IVF sections are present, HNSW exactly when the graph section is, IVF codes
    /// exactly when the code book or the codes section is. Bits this build does not know are ignored.
    static func checkFeatureBits(_ optional: UInt32, footer: SegmentFooter, object: String) throws(FormatError) {
        let present: [(bit: UInt32, name: String, has: Bool)] = [
            (SegmentFeatures.ivf, "IVF", footer.section(.ivfCentroids) != nil && footer.section(.ivfPartitions) != nil),
            (SegmentFeatures.hnsw, "HNSW", footer.section(.hnswGraph) != nil),
            (SegmentFeatures.codes, "IVF codes", footer.section(.ivfCodebook) != nil || footer.section(.ivfCodes) != nil),
        ]
        for p in present where (optional & p.bit != 0) != p.has {
            throw FormatError(.corrupted, object: object, offset: 16,
                              p.has ? "segment has \(p.name) sections but its header's \(p.name) bit is clear"
                                    : "segment header's \(p.name) bit is set but its sections are missing")
        }
    }

    /// Sections must not overlap, and every byte between header, sections and footer that no
    /// section covers must be zero, so that no byte of a segment escapes a check.
    static func checkPadding(_ bytes: [UInt8], footer: SegmentFooter, footerOffset: UInt64, object: String) throws(FormatError) {
        var cursor = UInt64(ObjectHeader.size)
        for d in footer.sections.sorted(by: { $0.offset < $1.offset }) {
            guard d.offset >= cursor else {
                throw FormatError(.corrupted, object: object, offset: d.offset, "section \(d.kind) overlaps the previous one")
            }
            if let i = bytes[Int(cursor)..<Int(d.offset)].firstIndex(where: { $0 != 0 }) {
                throw FormatError(.corrupted, object: object, offset: UInt64(i), "non-zero padding byte")
            }
            cursor = d.offset + d.storedLength
        }
        if let i = bytes[Int(cursor)..<Int(footerOffset)].firstIndex(where: { $0 != 0 }) {
            throw FormatError(.corrupted, object: object, offset: UInt64(i), "non-zero padding byte")
        }
    }

    /// Checks every partition's vector and id bytes against the IVF checksums.
    static func checkPartitions(_ layout: IVFLayout, vectors: [UInt8], ids: [UInt8], footer: SegmentFooter, object: String,
                                vectorOffset: UInt64, limits: DecodingLimits) throws(FormatError) {
        guard limits.verifyChecksums else { return }
        let dim4 = footer.dimension * 4
        for p in 0..<layout.nlist {
            let rows = layout.rows(p)
            guard crc32c(vectors[rows.lowerBound * dim4..<rows.upperBound * dim4]) == layout.vectorCRCs[p],
                  crc32c(ids[rows.lowerBound * 8..<rows.upperBound * 8]) == layout.idCRCs[p] else {
                throw FormatError(.corrupted, object: object, offset: vectorOffset + UInt64(rows.lowerBound * dim4),
                                  "partition \(p) checksum mismatch")
            }
        }
    }

    /// Checks a section's CRC and decompresses it.
    public static func unpack(_ stored: [UInt8], _ d: SectionDescriptor, object: String,
                              limits: DecodingLimits = .default) throws(FormatError) -> [UInt8] {
        guard stored.count == Int(d.storedLength) else {
            throw FormatError(.truncated, object: object, offset: d.offset, "section \(d.kind) has \(stored.count) of \(d.storedLength) bytes")
        }
        guard !limits.verifyChecksums || crc32c(stored) == d.crc else {
            throw FormatError(.corrupted, object: object, offset: d.offset, "section \(d.kind) checksum mismatch")
        }
        guard d.isCompressed else { return stored }
        return try LZ4Frame.decompress(stored, expectedSize: Int(d.rawLength), object: object, offset: d.offset)
    }

    /// Decodes the vector section's stored bytes.
    public static func decodeVectors(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                     limits: DecodingLimits = .default) throws(FormatError) -> [Float] {
        let raw = try unpack(stored, d, object: object, limits: limits)
        var r = ByteReader(raw, object: object, baseOffset: d.offset)
        return try r.readFloats(Int(footer.rowCount) * footer.dimension, "vectors")
    }

    /// Decodes the id section's stored bytes.
    public static func decodeIDs(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                     limits: DecodingLimits = .default) throws(FormatError) -> [UInt64] {
        let raw = try unpack(stored, d, object: object, limits: limits)
        guard UInt64(raw.count) == footer.rowCount * 8 else {
            throw FormatError(.corrupted, object: object, offset: d.offset, "id section holds \(raw.count) bytes for \(footer.rowCount) rows")
        }
        var r = ByteReader(raw, object: object, baseOffset: d.offset)
        var ids: [UInt64] = []
        ids.reserveCapacity(Int(footer.rowCount))
        for _ in 0..<footer.rowCount { ids.append(try r.read(UInt64.self)) }
        return ids
    }

    static func encodeMetadata(_ rows: [Metadata]) throws(FormatError) -> [UInt8] {
        var body = ByteWriter()
        var offsets: [UInt32] = [0]
        for row in rows {
            try MetadataCodec.encode(row, into: &body)
            guard body.count <= Int(UInt32.max) else {
                throw FormatError(.invalidInput, object: "", offset: 0, "metadata section exceeds 4 GiB")
            }
            offsets.append(UInt32(body.count))
        }
        var w = ByteWriter(capacity: offsets.count * 4 + body.count)
        for o in offsets { w.write(o) }
        w.write(bytes: body.bytes)
        return w.bytes
    }

    /// Decodes the metadata section's stored bytes.
    public static func decodeMetadata(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                     limits: DecodingLimits = .default) throws(FormatError) -> [Metadata] {
        let raw = try unpack(stored, d, object: object, limits: limits)
        let rows = Int(footer.rowCount)
        var r = ByteReader(raw, object: object, baseOffset: d.offset)
        guard rows < raw.count / 4 else { throw r.error(.truncated, "metadata offsets of \(rows) rows exceed the section") }
        var offsets: [Int] = []
        for _ in 0...rows { offsets.append(Int(try r.read(UInt32.self, "metadata offset"))) }
        let bodyStart = r.index
        guard offsets.first == 0, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
              offsets.last == raw.count - bodyStart else {
            throw r.error(.corrupted, "metadata offsets are not ascending within the section")
        }
        var result: [Metadata] = []
        result.reserveCapacity(rows)
        for i in 0..<rows {
            var row = ByteReader(Array(raw[bodyStart + offsets[i]..<bodyStart + offsets[i + 1]]), object: object,
                                 baseOffset: d.offset + UInt64(bodyStart + offsets[i]))
            result.append(try MetadataCodec.decode(&row))
            try row.expectEnd("metadata row \(i)")
        }
        return result
    }

    static func encodePayloads(_ payloads: [[UInt8]]) -> [UInt8] {
        var w = ByteWriter()
        var offset: UInt64 = 0
        w.write(offset)
        for p in payloads { offset += UInt64(p.count); w.write(offset) }
        for p in payloads { w.write(bytes: p) }
        return w.bytes
    }

    /// Decodes the payload section's stored bytes.
    public static func decodePayloads(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                     limits: DecodingLimits = .default) throws(FormatError) -> [[UInt8]] {
        let raw = try unpack(stored, d, object: object, limits: limits)
        let rows = Int(footer.rowCount)
        var r = ByteReader(raw, object: object, baseOffset: d.offset)
        guard rows < raw.count / 8 else { throw r.error(.truncated, "payload offsets of \(rows) rows exceed the section") }
        var offsets: [UInt64] = []
        for _ in 0...rows { offsets.append(try r.read(UInt64.self, "payload offset")) }
        let bodyStart = r.index
        guard offsets.first == 0, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
              offsets.last == UInt64(raw.count - bodyStart) else {
            throw r.error(.corrupted, "payload offsets are not ascending within the section")
        }
        return (0..<rows).map { i in Array(raw[bodyStart + Int(offsets[i])..<bodyStart + Int(offsets[i + 1])]) }
    }
}

/// What one ranged read of a segment's tail yields: the footer and, for IVF segments, the
/// centroids and partition table, so a query can pick partitions before reading any data.
public struct SegmentTail: Sendable {
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

extension IVFLayout {
    /// Checks one partition's vector and id bytes, read on their own, against its checksums.
    public func check(partition p: Int, vectors: [UInt8], ids: [UInt8], object: String, offset: UInt64) throws(FormatError) {
        guard crc32c(vectors) == vectorCRCs[p], crc32c(ids) == idCRCs[p] else {
            throw FormatError(.corrupted, object: object, offset: offset, "partition \(p) checksum mismatch")
        }
    }
}

extension SegmentCodec {
    /// Decodes the HNSW graph section's stored bytes.
    public static func decodeGraph(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                   limits: DecodingLimits = .default) throws(FormatError) -> GraphLayout {
        try GraphLayout.decode(unpack(stored, d, object: object, limits: limits), footer: footer, object: object, offset: d.offset)
    }
}
