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

    static func graphSegment() -> SegmentContents {
        // Three nodes, m = 2: level-0 slots are 5 per node; node 2 is on level 1.
        var c = SegmentContents(dimension: 2, metric: 1, ids: [7, 8, 9], vectors: [0, 0, 1, 1, 2, 2])
        c.graph = GraphLayout(m: 2, entryPoint: 2, maxLevel: 1, levels: [0, 0, 1],
                              level0: [2, 1, 2, 0, 0, 2, 0, 2, 0, 0, 2, 0, 1, 0, 0], upper: [[], [], [0, 0, 0]])
        return c
    }

    @Test func ivfAndGraphSegmentsRoundTrip() throws {
        for c in [Self.ivfSegment(), Self.graphSegment()] {
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
        for c in [Self.ivfSegment(), Self.graphSegment()] {
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
}
