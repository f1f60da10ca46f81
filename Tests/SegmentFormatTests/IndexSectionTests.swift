import SegmentFormat
import Testing

@Suite struct IndexSectionTests {
    /// 12 rows of dimension 2 in 3 partitions, with a small graph.
    static func ivfSegment() -> SegmentContents {
        var c = SegmentContents(dimension: 2, metric: 1, ids: (0..<12).map { UInt64(100 + $0) },
                                vectors: (0..<24).map { Float($0) / 4 },
                                metadata: (0..<12).map { ["p": .int(Int64($0 / 4))] })
        c.ivf = IVFLayout(centroids: [0.5, 0.75, 2.5, 2.75, 4.5, 4.75], offsets: [0, 4, 8, 12])
        return c
    }

    /// The IVF segment with both kinds of codes: binary records (padded dimension 64: 8 code
    /// bytes, f32 norm, f32 dot, f32 centroid term) where code byte i of row r is 16·r + i,
    /// norm r/2, dot 0.75, centroid term −r;
    /// SQ8 codes 10·r + j, minimums (0, −1), steps (0.5, 0.25). A format test: the values pin
    /// bytes, they are not a real quantization of the vectors.
    static func ivfCodesSegment() -> SegmentContents {
        var c = ivfSegment()
        var binary: [UInt8] = []
        for r in 0..<12 {
            binary += (0..<8).map { UInt8(16 * r + $0) }
            withUnsafeBytes(of: (Float(r) / 2).bitPattern.littleEndian) { binary += $0 }
            withUnsafeBytes(of: Float(0.75).bitPattern.littleEndian) { binary += $0 }
            withUnsafeBytes(of: Float(-r).bitPattern.littleEndian) { binary += $0 }
        }
        let sq8 = (0..<12).flatMap { r in (0..<2).map { UInt8(10 * r + $0) } }
        c.codes = IVFCodes(codebook: IVFCodebook(kinds: [.binary, .sq8], seed: 0x5EED, paddedDimension: 64,
                                                 sq8Minimums: [0, -1], sq8Scales: [0.5, 0.25]),
                           binary: binary, sq8: sq8)
        return c
    }

    static func graphSegment() -> SegmentContents {
        // Three nodes, m = 2: level-0 slots are 5 per node; node 2 is on level 1.
        var c = SegmentContents(dimension: 2, metric: 1, ids: [7, 8, 9], vectors: [0, 0, 1, 1, 2, 2])
        c.graph = GraphLayout(m: 2, entryPoint: 2, maxLevel: 1, levels: [0, 0, 1],
                              level0: [2, 1, 2, 0, 0, 2, 0, 2, 0, 0, 2, 0, 1, 0, 0], upper: [[], [], [0, 0, 0]])
        return c
    }

    @Test func ivfAndGraphSegmentsRoundTrip() throws {
        for c in [Self.ivfSegment(), Self.graphSegment(), Self.ivfCodesSegment()] {
            let e = try SegmentCodec.encode(c)
            let d = try SegmentCodec.decode(e.bytes, object: "s")
            #expect(d == c)
        }
    }

    @Test func theTailHoldsFooterAndIVFSections() throws {
        let e = try SegmentCodec.encode(Self.ivfSegment())
        #expect(e.tailOffset < e.footerOffset)
        let tail = try SegmentTail.decode(Array(e.bytes[Int(e.tailOffset)...]), tailOffset: e.tailOffset,
                                          objectSize: UInt64(e.bytes.count), object: "s")
        let ivf = try #require(tail.ivf)
        #expect(ivf.offsets == [0, 4, 8, 12])
        #expect(ivf.centroids == Self.ivfSegment().ivf!.centroids)
        // A partition read on its own checks against its own checksums.
        let v = try #require(tail.footer.section(.vectors)), ids = try #require(tail.footer.section(.ids))
        #expect(!ids.isCompressed)
        let pv = Array(e.bytes[Int(v.offset) + 4 * 8..<Int(v.offset) + 8 * 8])
        let pi = Array(e.bytes[Int(ids.offset) + 4 * 8..<Int(ids.offset) + 8 * 8])
        try ivf.check(partition: 1, vectors: pv, ids: pi, object: "s", offset: 0)
        var damaged = pv
        damaged[3] ^= 1
        #expect(throws: FormatError.self) { try ivf.check(partition: 1, vectors: damaged, ids: pi, object: "s", offset: 0) }
    }

    @Test func flatSegmentsHaveTheirTailAtTheFooter() throws {
        let e = try SegmentCodec.encode(SegmentContents(dimension: 2, metric: 1, ids: [1], vectors: [1, 2]))
        #expect(e.tailOffset == e.footerOffset)
    }

    @Test func everyFlippedByteOfIndexSegmentsIsDetected() throws {
        for c in [Self.ivfSegment(), Self.graphSegment(), Self.ivfCodesSegment()] {
            let bytes = try SegmentCodec.encode(c).bytes
            for i in 0..<bytes.count {
                var damaged = bytes
                damaged[i] ^= 0x21
                #expect(throws: FormatError.self, "byte \(i)") { try SegmentCodec.decode(damaged, object: "s") }
            }
        }
    }

    @Test func graphsWithLinksOutOfRangeAreRejected() throws {
        var c = Self.graphSegment()
        c.graph!.level0[1] = 3  // node 0 links to node 3 of 3
        let e = try SegmentCodec.encode(c)
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(e.bytes, object: "g") }
        #expect(error.code == .corrupted)
    }

    /// A reader gets the code book with the tail and reads one partition's blocks on their own,
    /// each checked against its own checksum; each row's info names its key and the checksum
    /// of its exact vector, so a re-ranked row read alone is checked too.
    @Test func codesArePartitionBlocksCheckedOnTheirOwn() throws {
        let c = Self.ivfCodesSegment()
        let e = try SegmentCodec.encode(c)
        let tail = try SegmentTail.decode(Array(e.bytes[Int(e.tailOffset)...]), tailOffset: e.tailOffset,
                                          objectSize: UInt64(e.bytes.count), object: "s")
        let book = try #require(tail.codebook)
        #expect(book == c.codes!.codebook)
        #expect(book.recordBytes(dimension: 2) == 12 + 20 + 2)
        let section = try #require(tail.footer.section(.ivfCodes))
        #expect(section.offset < e.tailOffset, "codes lie in the data area, not the tail")
        let ivf = try #require(tail.ivf)
        for block in IVFCodebook.Block.allCases {
            let r = book.range(block, rows: ivf.rows(1), totalRows: 12, dimension: 2)
            let bytes = Array(e.bytes[Int(section.offset + r.lowerBound)..<Int(section.offset + r.upperBound)])
            try book.check(block, partition: 1, bytes: bytes, object: "s", offset: r.lowerBound)
            var damaged = bytes
            damaged[bytes.count / 2] ^= 4
            #expect(throws: FormatError.self) { try book.check(block, partition: 1, bytes: damaged, object: "s", offset: 0) }
        }
        // The binary region follows the 12 rows' info; partition 1's block holds rows 4..<8.
        let binaryStart: UInt64 = 12 * 12
        #expect(book.range(.binary, rows: 4..<8, totalRows: 12, dimension: 2) == binaryStart + 80..<binaryStart + 160)
        let b = book.range(.binary, rows: ivf.rows(1), totalRows: 12, dimension: 2)
        #expect(Int(e.bytes[Int(section.offset + b.lowerBound)]) == 16 * 4)
        // Row info: key, then the CRC of the row's 8 vector bytes.
        let info = book.range(.rowInfo, rows: ivf.rows(1), totalRows: 12, dimension: 2)
        var reader = ByteReader(Array(e.bytes[Int(section.offset + info.lowerBound)..<Int(section.offset + info.upperBound)]), object: "s")
        #expect(try reader.read(UInt64.self) == 104)
        let v = try #require(tail.footer.section(.vectors))
        #expect(try reader.read(UInt32.self) == crc32c(e.bytes[Int(v.offset) + 4 * 8..<Int(v.offset) + 5 * 8]))
    }

    @Test func codesThatDoNotFitTheRowsAreRefused() throws {
        var c = Self.ivfCodesSegment()
        c.codes!.sq8.removeLast()
        #expect(throws: FormatError.self) { try SegmentCodec.encode(c) }
        c = Self.ivfCodesSegment()
        c.ivf = nil
        #expect(throws: FormatError.self) { try SegmentCodec.encode(c) }
        c = Self.ivfCodesSegment()
        c.codes!.codebook.paddedDimension = 128
        #expect(throws: FormatError.self) { try SegmentCodec.encode(c) }
    }

    /// A code kind this build does not know: the codes are ignored (exact vectors still serve),
    /// not an error.
    @Test func unknownCodeKindsAreIgnored() throws {
        let e = try SegmentCodec.encode(Self.ivfCodesSegment())
        var bytes = e.bytes
        let tail = try SegmentTail.decode(Array(bytes[Int(e.tailOffset)...]), tailOffset: e.tailOffset,
                                          objectSize: UInt64(bytes.count), object: "s")
        let cb = try #require(tail.footer.section(.ivfCodebook))
        bytes[Int(cb.offset)] |= 0x80  // an unknown kind bit; then fix the section, footer and trailer CRCs
        let raw = Array(bytes[Int(cb.offset)..<Int(cb.offset + cb.storedLength)])
        let index = tail.footer.sections.firstIndex { $0.kind == cb.kind }!
        let footerAt = Int(e.footerOffset) + 24 + 40 * index + 4
        withUnsafeBytes(of: crc32c(raw).littleEndian) { for i in 0..<4 { bytes[footerAt + i] = $0[i] } }
        let footerLength = bytes.count - 32 - Int(e.footerOffset)
        withUnsafeBytes(of: crc32c(bytes[Int(e.footerOffset)..<Int(e.footerOffset) + footerLength]).littleEndian) {
            for i in 0..<4 { bytes[bytes.count - 32 + 12 + i] = $0[i] }
        }
        withUnsafeBytes(of: crc32c(bytes[(bytes.count - 32)..<(bytes.count - 12)]).littleEndian) {
            for i in 0..<4 { bytes[bytes.count - 32 + 20 + i] = $0[i] }
        }
        let decoded = try SegmentCodec.decode(bytes, object: "s")
        #expect(decoded.codes == nil)
        #expect(decoded.ivf == Self.ivfSegment().ivf)
        let t = try SegmentTail.decode(Array(bytes[Int(e.tailOffset)...]), tailOffset: e.tailOffset, objectSize: UInt64(bytes.count), object: "s")
        #expect(t.codebook == nil)
    }
}
