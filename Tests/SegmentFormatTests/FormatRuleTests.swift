// The reader rules spec/format.md settles for issue 15, part 8: each test encodes an object,
// patches the bytes one rule is about, re-seals the checksums so only that rule can object, and
// expects the typed error the spec names.
import Foundation
import SegmentFormat
import Testing

/// Patching encoded objects behind their checksums.
enum Patch {
    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    static func get<T: FixedWidthInteger>(_: T.Type, at offset: Int, in bytes: [UInt8]) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { for i in 0..<MemoryLayout<T>.size { $0[i] = bytes[offset + i] } }
        return T(littleEndian: v)
    }

    /// Re-seals an object header's CRC after its first 28 bytes changed.
    static func resealHeader(_ bytes: inout [UInt8]) {
        put(crc32c(Array(bytes[0..<28])), at: 28, in: &bytes)
    }

    /// The trailer's start, the footer's offset and length.
    static func footer(of bytes: [UInt8]) -> (trailer: Int, offset: Int, length: Int) {
        let t = bytes.count - 32
        return (t, Int(get(UInt64.self, at: t, in: bytes)), Int(get(UInt32.self, at: t + 8, in: bytes)))
    }

    /// Re-seals the footer CRC (in the trailer) and the trailer CRC after footer or trailer bytes changed.
    static func resealFooter(_ bytes: inout [UInt8]) {
        let f = footer(of: bytes)
        put(crc32c(Array(bytes[f.offset..<f.offset + f.length])), at: f.trailer + 12, in: &bytes)
        put(crc32c(Array(bytes[f.trailer..<f.trailer + 20])), at: f.trailer + 20, in: &bytes)
    }

    /// The absolute offset of the descriptor of the section of `kind`.
    static func descriptor(_ kind: SectionKind, in bytes: [UInt8]) -> Int {
        let f = footer(of: bytes)
        let count = Int(get(UInt32.self, at: f.offset, in: bytes))
        let at = (0..<count).map { f.offset + 24 + $0 * 40 }.first { get(UInt16.self, at: $0, in: bytes) == kind.rawValue }
        return at!
    }

    /// Re-seals a section's CRC (in its descriptor) and the footer after the section's stored bytes changed.
    static func resealSection(_ kind: SectionKind, _ bytes: inout [UInt8]) {
        let d = descriptor(kind, in: bytes)
        let offset = Int(get(UInt64.self, at: d + 8, in: bytes)), length = Int(get(UInt64.self, at: d + 16, in: bytes))
        put(crc32c(Array(bytes[offset..<offset + length])), at: d + 4, in: &bytes)
        resealFooter(&bytes)
    }

    /// Decodes the tail of a segment as a query does (without the header or data area).
    static func decodeTail(_ bytes: [UInt8], tailOffset: UInt64) throws -> SegmentTail {
        try SegmentTail.decode(Array(bytes[Int(tailOffset)...]), tailOffset: tailOffset, objectSize: UInt64(bytes.count), object: "s.bin")
    }
}

@Suite struct SegmentRuleTests {
    static let flat = SegmentCodecTests.sample(rows: 100, dimension: 4)

    /// A section kind appearing twice is corrupt (otherwise a reader would silently pick one).
    @Test func aSectionKindTwiceIsCorrupt() throws {
        var bytes = try SegmentCodec.encode(Self.flat).bytes
        let d = Patch.descriptor(.payloads, in: bytes)
        Patch.put(SectionKind.ids.rawValue, at: d, in: &bytes)
        Patch.resealFooter(&bytes)
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: "s.bin") }
        #expect(error.code == .corrupted)
        #expect(error.offset == UInt64(d))
        #expect(error.message.contains("twice"))
    }

    /// Flag bits other than LZ4 (bit 0) and required (bit 1) on a known kind: `unsupportedFeature`.
    @Test func unknownDescriptorFlagBitsAreUnsupported() throws {
        var bytes = try SegmentCodec.encode(Self.flat).bytes
        let d = Patch.descriptor(.ids, in: bytes)
        Patch.put(Patch.get(UInt16.self, at: d + 2, in: bytes) | 1 << 2, at: d + 2, in: &bytes)
        Patch.resealFooter(&bytes)
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: "s.bin") }
        #expect(error.code == .unsupportedFeature)
        #expect(error.offset == UInt64(d + 2))
    }

    /// The LZ4 flag on a section that must be stored raw is corrupt, even where only the tail is read.
    @Test func theLZ4FlagOnARawOnlySectionIsCorrupt() throws {
        let ivf = try SegmentCodec.encode(IndexSectionTests.ivfSegment())
        for kind in [SectionKind.vectors, .ids, .ivfCentroids, .ivfPartitions] {
            var bytes = ivf.bytes
            let d = Patch.descriptor(kind, in: bytes)
            Patch.put(Patch.get(UInt16.self, at: d + 2, in: bytes) | 1, at: d + 2, in: &bytes)
            Patch.resealFooter(&bytes)
            let error = try #require(throws: FormatError.self, "kind \(kind)") { try Patch.decodeTail(bytes, tailOffset: ivf.tailOffset) }
            #expect(error.code == .corrupted)
            #expect(error.message.contains("raw"), "kind \(kind): \(error)")
        }
    }

    /// A compressed section declaring more than 255-fold expansion is refused from the footer,
    /// before anything is allocated or decompressed.
    @Test func aDecompressedLengthBeyondTheLZ4BoundIsCorrupt() throws {
        let e = try SegmentCodec.encode(Self.flat)
        var bytes = e.bytes
        let d = Patch.descriptor(.metadata, in: bytes)
        let stored = Patch.get(UInt64.self, at: d + 16, in: bytes)
        #expect(Patch.get(UInt16.self, at: d + 2, in: bytes) & 1 == 1, "the sample's metadata is compressed")
        Patch.put(stored * 256 + 256, at: d + 24, in: &bytes)
        Patch.resealFooter(&bytes)
        let error = try #require(throws: FormatError.self) { try Patch.decodeTail(bytes, tailOffset: e.tailOffset) }
        #expect(error.code == .corrupted)
        #expect(error.offset == UInt64(d))
        // 256 × stored + 255 is the largest length the bound admits: the footer accepts it (the
        // frame then fails to decode to it, a different check).
        Patch.put(stored * 256 + 255, at: d + 24, in: &bytes)
        Patch.resealFooter(&bytes)
        _ = try Patch.decodeTail(bytes, tailOffset: e.tailOffset)
    }

    /// The id section is mandatory, and its raw length is `rows × 8`, already for a tail reader.
    @Test func theIDSectionIsMandatoryAndSized() throws {
        let e = try SegmentCodec.encode(Self.flat)
        var renamed = e.bytes
        let d = Patch.descriptor(.ids, in: renamed)
        Patch.put(UInt16(200), at: d, in: &renamed)  // an unknown, not required kind
        Patch.put(UInt16(1), at: d + 2, in: &renamed)
        Patch.resealFooter(&renamed)
        let missing = try #require(throws: FormatError.self) { try Patch.decodeTail(renamed, tailOffset: e.tailOffset) }
        #expect(missing.code == .corrupted)
        #expect(missing.message.contains("no id section"))

        var resized = e.bytes
        #expect(Patch.get(UInt16.self, at: d + 2, in: resized) & 1 == 1, "the sample's ids are compressed")
        Patch.put(UInt64(101 * 8), at: d + 24, in: &resized)
        Patch.resealFooter(&resized)
        let wrong = try #require(throws: FormatError.self) { try Patch.decodeTail(resized, tailOffset: e.tailOffset) }
        #expect(wrong.code == .corrupted)
        #expect(wrong.message.contains("id section holds"))
    }

    /// IVF sections come as a pair, code sections as a pair and only with IVF: a tail reader
    /// refuses a lone one instead of reading the segment as flat.
    @Test func loneIVFOrCodeSectionsAreCorruptInTheTail() throws {
        let ivf = try SegmentCodec.encode(IndexSectionTests.ivfSegment())
        let codes = try SegmentCodec.encode(IndexSectionTests.ivfCodesSegment())
        for (e, kind) in [(ivf, SectionKind.ivfPartitions), (ivf, .ivfCentroids), (codes, .ivfCodes)] {
            var bytes = e.bytes
            let d = Patch.descriptor(kind, in: bytes)
            Patch.put(UInt16(201), at: d, in: &bytes)  // an unknown, not required kind
            Patch.resealFooter(&bytes)
            let error = try #require(throws: FormatError.self, "without \(kind)") { try Patch.decodeTail(bytes, tailOffset: e.tailOffset) }
            #expect(error.code == .corrupted, "without \(kind)")
        }
    }

    /// Reserved fields of footer, descriptors and the IVF partition section must be 0.
    @Test func nonZeroReservedFieldsAreCorrupt() throws {
        let e = try SegmentCodec.encode(IndexSectionTests.ivfSegment())
        let f = Patch.footer(of: e.bytes)
        for (at, what) in [(f.offset + 4, "footer reserved field"), (f.offset + 21, "footer reserved bytes"),
                           (f.offset + 23, "footer reserved bytes"), (Patch.descriptor(.ids, in: e.bytes) + 39, "descriptor reserved")] {
            var bytes = e.bytes
            bytes[at] = 1
            Patch.resealFooter(&bytes)
            let error = try #require(throws: FormatError.self, "\(what)") { try SegmentCodec.decode(bytes, object: "s.bin") }
            #expect(error.code == .corrupted, "\(what)")
        }
        var bytes = e.bytes
        let p = Patch.descriptor(.ivfPartitions, in: bytes)
        bytes[Int(Patch.get(UInt64.self, at: p + 8, in: bytes)) + 4] = 1
        Patch.resealSection(.ivfPartitions, &bytes)
        let error = try #require(throws: FormatError.self) { try Patch.decodeTail(bytes, tailOffset: e.tailOffset) }
        #expect(error.code == .corrupted)
        #expect(error.message.contains("reserved"))
    }

    /// A trailer version differing from the header's is corrupt when both are read; a tail
    /// reader, which sees only the trailer, reports an unknown version as such.
    @Test func aTrailerVersionDifferentFromTheHeadersIsCorrupt() throws {
        let e = try SegmentCodec.encode(Self.flat)
        var bytes = e.bytes
        let f = Patch.footer(of: bytes)
        Patch.put(UInt16(2), at: f.trailer + 16, in: &bytes)
        Patch.resealFooter(&bytes)
        let whole = try #require(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: "s.bin") }
        #expect(whole.code == .corrupted)
        #expect(whole.offset == UInt64(f.trailer + 16))
        let tail = try #require(throws: FormatError.self) { try Patch.decodeTail(bytes, tailOffset: e.tailOffset) }
        #expect(tail.code == .unsupportedVersion)
    }

    /// The header's optional bits this reader knows must agree with the sections present.
    @Test func headerFeatureBitsMustMatchTheSections() throws {
        for (contents, flip) in [(Self.flat, UInt32(1)), (Self.flat, 2), (Self.flat, 4),
                                 (IndexSectionTests.ivfSegment(), 1), (IndexSectionTests.graphSegment(), 2),
                                 (IndexSectionTests.ivfCodesSegment(), 4)] {
            var bytes = try SegmentCodec.encode(contents).bytes
            Patch.put(Patch.get(UInt32.self, at: 16, in: bytes) ^ flip, at: 16, in: &bytes)
            Patch.resealHeader(&bytes)
            let error = try #require(throws: FormatError.self, "bit \(flip)") { try SegmentCodec.decode(bytes, object: "s.bin") }
            #expect(error.code == .corrupted)
            #expect(error.offset == 16)
        }
        // A bit this reader does not know is ignored.
        var bytes = try SegmentCodec.encode(Self.flat).bytes
        Patch.put(UInt32(1 << 7), at: 16, in: &bytes)
        Patch.resealHeader(&bytes)
        #expect(try SegmentCodec.decode(bytes, object: "s.bin") == Self.flat)
    }

    /// A graph of 0 rows records entry node 0 (and top level −1); any other entry is corrupt.
    @Test func anEmptyGraphHasEntryZero() throws {
        var c = SegmentContents(dimension: 3, metric: 1)
        c.graph = GraphLayout(m: 4, entryPoint: 0, maxLevel: -1, levels: [], level0: [], upper: [])
        #expect(try SegmentCodec.decode(SegmentCodec.encode(c).bytes, object: "g.bin") == c)
        c.graph!.entryPoint = 5
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(SegmentCodec.encode(c).bytes, object: "g.bin") }
        #expect(error.code == .corrupted)
    }

    /// Bytes after the LZ4 frame within a section's stored length are corrupt.
    @Test func bytesAfterAnLZ4FrameAreCorrupt() throws {
        var bytes = try SegmentCodec.encode(Self.flat).bytes
        let d = Patch.descriptor(.metadata, in: bytes)
        let offset = Int(Patch.get(UInt64.self, at: d + 8, in: bytes)), stored = Int(Patch.get(UInt64.self, at: d + 16, in: bytes))
        #expect(bytes[offset + stored] == 0, "padding follows the frame")
        Patch.put(UInt64(stored + 1), at: d + 16, in: &bytes)  // take one padding byte into the section
        Patch.resealSection(.metadata, &bytes)
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: "s.bin") }
        #expect(error.code == .corrupted)
        #expect(error.offset == UInt64(offset))
    }
}

@Suite struct ManifestAndPKIndexRuleTests {
    /// The offset of the first segment entry's dead-row field in `ManifestAndPKIndexTests.manifest`.
    static func deadRowField(_ m: Manifest) -> Int {
        32 + 32 + 2 + m.writerID.utf8.count + 4 + 1 + 3 + 8 + 2 + m.pkIndexObject.utf8.count + 8 + 4
            + 2 + m.segments[0].name.utf8.count + 8 + 8 + 4
    }

    static func resealManifest(_ bytes: inout [UInt8]) {
        Patch.put(crc32c(Array(bytes[..<(bytes.count - 4)])), at: bytes.count - 4, in: &bytes)
    }

    /// With the live-row hints bit clear, the dead-row field must be 0.
    @Test func deadRowsWithoutTheHintsBitAreCorrupt() throws {
        let m = ManifestAndPKIndexTests.manifest
        var bytes = try m.encode()
        let at = Self.deadRowField(m)
        #expect(Patch.get(UInt32.self, at: at, in: bytes) == 0)
        Patch.put(UInt32(3), at: at, in: &bytes)
        Self.resealManifest(&bytes)
        let error = try #require(throws: FormatError.self) { try Manifest.decode(bytes, object: "m") }
        #expect(error.code == .corrupted)
        #expect(error.offset == UInt64(at))
        // With the bit set the same bytes are a count of 3 dead rows.
        Patch.put(UInt32(1), at: 16, in: &bytes)
        Patch.resealHeader(&bytes)
        Self.resealManifest(&bytes)
        #expect(try Manifest.decode(bytes, object: "m").segments[0].deadRows == 3)
    }

    /// The manifest's reserved bytes after the metric must be 0.
    @Test func manifestReservedBytesMustBeZero() throws {
        let m = ManifestAndPKIndexTests.manifest
        var bytes = try m.encode()
        let at = 32 + 32 + 2 + m.writerID.utf8.count + 4 + 1
        #expect(bytes[at] == 0 && bytes[at + 1] == 0 && bytes[at + 2] == 0)
        bytes[at + 2] = 1
        Self.resealManifest(&bytes)
        let error = try #require(throws: FormatError.self) { try Manifest.decode(bytes, object: "m") }
        #expect(error.code == .corrupted)
        #expect(error.offset == UInt64(at))
    }

    /// Builds a full pk-index object by hand with entries in the order given.
    static func pkIndex(entries: [(UInt64, UInt32, UInt32)]) -> [UInt8] {
        var body: [UInt8] = []
        func add<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { body += $0 } }
        add(UInt64(1)); add(UInt32(1)); add(UInt16(5)); body += Array("a.bin".utf8)
        add(UInt64(entries.count))
        for (k, s, r) in entries { add(k); add(s); add(r) }
        add(UInt64(0))
        let frame = LZ4Frame.compress(body)
        var bytes = Array("VECGOPKI".utf8) + [UInt8](repeating: 0, count: 24)
        Patch.put(UInt16(1), at: 8, in: &bytes)
        Patch.put(UInt16(32), at: 10, in: &bytes)
        Patch.put(UInt32(frame.count), at: 20, in: &bytes)
        Patch.put(UInt32(body.count), at: 24, in: &bytes)
        Patch.resealHeader(&bytes)
        bytes += frame
        withUnsafeBytes(of: crc32c(frame).littleEndian) { bytes += $0 }
        return bytes
    }

    /// PK-index entries are in strictly ascending key order; any other order is corrupt.
    @Test func pkIndexKeysMustAscend() throws {
        let ordered = try PKIndex.decode(Self.pkIndex(entries: [(1, 0, 0), (5, 0, 1)]), object: "p")
        #expect(ordered.entries.count == 2)
        let error = try #require(throws: FormatError.self) {
            try PKIndex.decode(Self.pkIndex(entries: [(5, 0, 0), (1, 0, 1)]), object: "p")
        }
        #expect(error.code == .corrupted)
        let twice = try #require(throws: FormatError.self) {
            try PKIndex.decode(Self.pkIndex(entries: [(5, 0, 0), (5, 0, 1)]), object: "p")
        }
        #expect(twice.code == .corrupted)
    }
}
