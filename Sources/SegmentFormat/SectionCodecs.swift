// The per-section codecs of a segment (an extension of SegmentCodec): unpacking a section (CRC,
// LZ4) and encoding or decoding its vectors, ids, metadata, payloads and HNSW graph.

extension SegmentCodec {
    /// Checks a section's CRC and decompresses it.
    package static func unpack(_ stored: [UInt8], _ d: SectionDescriptor, object: String,
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
    package static func decodeVectors(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                     limits: DecodingLimits = .default) throws(FormatError) -> [Float] {
        let raw = try unpack(stored, d, object: object, limits: limits)
        var r = ByteReader(raw, object: object, baseOffset: d.offset)
        return try r.readFloats(Int(footer.rowCount) * footer.dimension, "vectors")
    }

    /// Decodes the id section's stored bytes.
    package static func decodeIDs(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
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
    package static func decodeMetadata(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
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
    package static func decodePayloads(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
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

    /// Decodes the HNSW graph section's stored bytes.
    package static func decodeGraph(_ stored: [UInt8], _ d: SectionDescriptor, footer: SegmentFooter, object: String,
                                   limits: DecodingLimits = .default) throws(FormatError) -> GraphLayout {
        try GraphLayout.decode(unpack(stored, d, object: object, limits: limits), footer: footer, object: object, offset: d.offset)
    }
}
