// SegmentCodec: encodes a whole segment object and decodes one with every check (padding,
// feature bits, partition checksums). The per-section codecs are in SectionCodecs.swift.

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
}
