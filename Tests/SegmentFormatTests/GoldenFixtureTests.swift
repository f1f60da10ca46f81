import Foundation
@_spi(Testing) import SegmentFormat
import Testing

/// The golden files of every format version (fixtures/). Each decodes to exactly its expected
/// content, and re-encoding that content gives exactly the golden bytes: an encoder that
/// changes bytes without a new format version fails here.
///
/// Fixtures are written once, by `VECGO_WRITE_FIXTURES=1 swift test --filter GoldenFixtureTests`,
/// which never overwrites an existing file.
@Suite struct GoldenFixtureTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/v1")

    static let flat = SegmentContents(
        dimension: 4, metric: 1, ids: [1, 2, 3, 4, 5],
        vectors: (0..<20).map { Float($0) * 0.5 - 3 })

    static let full = SegmentContents(
        dimension: 3, metric: 3, ids: [10, 11, 12, 13, 14, 15],
        vectors: (0..<18).map { Float($0) / 7 },
        metadata: [
            ["s": .string("héllo")],
            ["i": .int(-42), "f": .float(2.5)],
            ["b": .bool(true), "list": .stringList(["x", "", "zz"])],
            ["t": .timestamp(microseconds: 1_732_492_800_000_000)],
            [:],
            ["s": .string(""), "i": .int(Int64.max), "b": .bool(false)],
        ],
        payloads: [[1, 2, 3], [], Array("payload".utf8), [0], [], [255, 254]])

    static let empty = SegmentContents(dimension: 8, metric: 2)

    static let ivf = IndexSectionTests.ivfSegment()
    static let hnsw = IndexSectionTests.graphSegment()
    static let ivfCodes = IndexSectionTests.ivfCodesSegment()
    static let maxDimension = SegmentContents(dimension: 65_536, metric: 1, ids: [1],
                                              vectors: (0..<65_536).map { Float($0 % 1000) / 1000 })

    static let manifest = Manifest(
        version: 3, parentVersion: 2, commitTimeMicros: 1_732_492_800_123_456, writerEpoch: 1, writerID: "fixture",
        dimension: 4, metric: 1, nextID: 6, pkIndexObject: "pkindex_00000000000000000003-fixture.bin",
        pkIndexSize: 123,
        segments: [SegmentRef(name: "segment_fixture-1.bin", size: 500, tailOffset: 400, tailLength: 100,
                              rowCount: 5, minID: 1, maxID: 5)])

    /// The same manifest with the optional feature "live-row hints": two segments, one with
    /// 2 dead rows, one with none.
    static let manifestWithHints = Manifest(
        version: 4, parentVersion: 3, commitTimeMicros: 1_764_000_000_000_000, writerEpoch: 1, writerID: "fixture",
        dimension: 4, metric: 1, nextID: 9, pkIndexObject: "pkindex_00000000000000000004-fixture.bin",
        pkIndexSize: 150,
        segments: [SegmentRef(name: "segment_fixture-1.bin", size: 500, tailOffset: 400, tailLength: 100,
                              rowCount: 5, minID: 1, maxID: 5, deadRows: 2),
                   SegmentRef(name: "segment_fixture-2.bin", size: 300, tailOffset: 220, tailLength: 80,
                              rowCount: 3, minID: 6, maxID: 8, deadRows: 0)])

    static let pkIndex = PKIndex(
        version: 3, segments: ["segment_fixture-1.bin"],
        entries: [1: .init(segment: 0, row: 0), 2: .init(segment: 0, row: 1), 5: .init(segment: 0, row: 4)],
        tombstones: [3, 4])

    /// A manifest with the required feature "pk-index layers" (and live-row hints): a full
    /// index, a delta, and the newest delta.
    static let manifestWithLayers = Manifest(
        version: 6, parentVersion: 5, commitTimeMicros: 1_767_225_600_000_000, writerEpoch: 1, writerID: "fixture",
        dimension: 4, metric: 1, nextID: 9, pkIndexObject: "pkindex_00000000000000000006-fixture.bin",
        pkIndexSize: 97,
        segments: [SegmentRef(name: "segment_fixture-1.bin", size: 500, tailOffset: 400, tailLength: 100,
                              rowCount: 5, minID: 1, maxID: 5, deadRows: 4),
                   SegmentRef(name: "segment_fixture-2.bin", size: 300, tailOffset: 220, tailLength: 80,
                              rowCount: 3, minID: 2, maxID: 8, deadRows: 0)],
        pkIndexBaseLayers: [PKIndexLayer(name: "pkindex_00000000000000000004-fixture.bin", size: 150),
                            PKIndexLayer(name: "pkindex_00000000000000000005-fixture.bin", size: 96)])

    /// A delta layer (required feature flag 1): keys 2, 6 and 8 set to rows 0–2 of its one
    /// segment, key 5 removed. On top of `pkindex.bin` over the segments of
    /// `manifestWithLayers`: 1→(0,0), 2→(1,0), 6→(1,1), 8→(1,2).
    static let pkIndexDelta = PKIndex(
        version: 5, segments: ["segment_fixture-2.bin"],
        entries: [2: .init(segment: 0, row: 0), 6: .init(segment: 0, row: 1), 8: .init(segment: 0, row: 2)],
        tombstones: [5], kind: .delta)

    static func encoded() throws -> [(String, [UInt8])] {
        [
            ("segment-flat.bin", try SegmentCodec.encode(flat).bytes),
            ("segment-full.bin", try SegmentCodec.encode(full).bytes),
            ("segment-empty.bin", try SegmentCodec.encode(empty).bytes),
            ("segment-ivf.bin", try SegmentCodec.encode(ivf).bytes),
            ("segment-hnsw.bin", try SegmentCodec.encode(hnsw).bytes),
            ("segment-ivf-codes.bin", try SegmentCodec.encode(ivfCodes).bytes),
            ("segment-max-dimension.bin", try SegmentCodec.encode(maxDimension).bytes),
            ("manifest.bin", try manifest.encode()),
            ("manifest-live-row-hints.bin", try manifestWithHints.encode()),
            ("pkindex.bin", try pkIndex.encode()),
            ("manifest-pk-layers.bin", try manifestWithLayers.encode()),
            ("pkindex-delta.bin", try pkIndexDelta.encode()),
        ]
    }

    static func golden(_ name: String) throws -> [UInt8] {
        try Array(Data(contentsOf: directory.appendingPathComponent(name)))
    }

    @Test func writeMissingFixturesWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECGO_WRITE_FIXTURES"] == "1" else { return }
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        for (name, bytes) in try Self.encoded() {
            let url = Self.directory.appendingPathComponent(name)
            if !FileManager.default.fileExists(atPath: url.path) { try Data(bytes).write(to: url) }
        }
    }

    @Test func goldenFilesDecodeToTheirExpectedContent() throws {
        #expect(try SegmentCodec.decode(Self.golden("segment-flat.bin"), object: "segment-flat.bin") == Self.flat)
        #expect(try SegmentCodec.decode(Self.golden("segment-full.bin"), object: "segment-full.bin") == Self.full)
        #expect(try SegmentCodec.decode(Self.golden("segment-empty.bin"), object: "segment-empty.bin") == Self.empty)
        #expect(try SegmentCodec.decode(Self.golden("segment-ivf.bin"), object: "segment-ivf.bin") == Self.ivf)
        #expect(try SegmentCodec.decode(Self.golden("segment-hnsw.bin"), object: "segment-hnsw.bin") == Self.hnsw)
        #expect(try SegmentCodec.decode(Self.golden("segment-ivf-codes.bin"), object: "c") == Self.ivfCodes)
        // Segments written before codes existed decode without them (and are searched by exact vectors).
        #expect(try SegmentCodec.decode(Self.golden("segment-ivf.bin"), object: "segment-ivf.bin").codes == nil)
        #expect(try SegmentCodec.decode(Self.golden("segment-max-dimension.bin"), object: "m") == Self.maxDimension)
        #expect(try Manifest.decode(Self.golden("manifest.bin"), object: "manifest.bin") == Self.manifest)
        #expect(try Manifest.decode(Self.golden("manifest-live-row-hints.bin"), object: "m") == Self.manifestWithHints)
        // Older manifests record no hints: unknown, never "all live".
        #expect(try Manifest.decode(Self.golden("manifest.bin"), object: "manifest.bin").segments.allSatisfy { $0.deadRows == nil })
        #expect(try PKIndex.decode(Self.golden("pkindex.bin"), object: "pkindex.bin") == Self.pkIndex)
        #expect(try Manifest.decode(Self.golden("manifest-pk-layers.bin"), object: "m") == Self.manifestWithLayers)
        #expect(try PKIndex.decode(Self.golden("pkindex-delta.bin"), object: "d") == Self.pkIndexDelta)
        // Objects written before layers existed are one full index each.
        #expect(try Manifest.decode(Self.golden("manifest.bin"), object: "m").pkIndexBaseLayers.isEmpty)
        #expect(try PKIndex.decode(Self.golden("pkindex.bin"), object: "p").kind == .full)
    }

    /// The golden full index and delta combine over the layered manifest's segments as the
    /// fixture README says.
    @Test func goldenLayersCombine() throws {
        let full = try PKIndex.decode(Self.golden("pkindex.bin"), object: "pkindex.bin")
        let delta = try PKIndex.decode(Self.golden("pkindex-delta.bin"), object: "pkindex-delta.bin")
        let combined = try PKIndex.combine([("pkindex.bin", full), ("pkindex-delta.bin", delta)],
                                           segments: Self.manifestWithLayers.segments.map(\.name), version: 6)
        #expect(combined.entries == [1: .init(segment: 0, row: 0), 2: .init(segment: 1, row: 0),
                                     6: .init(segment: 1, row: 1), 8: .init(segment: 1, row: 2)])
    }

    /// A reader from before the layers (it knows no required feature flag) refuses both new
    /// objects with `unsupportedFeature`, and still reads every other fixture.
    @Test func readersThatPredateLayersRefuseThem() throws {
        var older = DecodingLimits()
        older.acceptedRequiredFeatures = []
        for name in ["manifest-pk-layers.bin", "pkindex-delta.bin"] {
            let error = #expect(throws: FormatError.self, "\(name)") { try Self.decodeAny(name, Self.golden(name), limits: older) }
            #expect(error?.code == .unsupportedFeature && error?.object == name && error?.offset == 12, "\(String(describing: error))")
            // This build reads them.
            try Self.decodeAny(name, Self.golden(name))
        }
        for (name, _) in try Self.encoded() where !["manifest-pk-layers.bin", "pkindex-delta.bin"].contains(name) {
            try Self.decodeAny(name, Self.golden(name), limits: older)
        }
    }

    /// The layer list and the flag are all a layered manifest adds: without them the bytes are
    /// a manifest of the same content as written before layers existed.
    @Test func layersChangeOnlyTheFlagAndTheListAtTheEnd() throws {
        var single = Self.manifestWithLayers
        single.pkIndexBaseLayers = []
        let layered = try Self.golden("manifest-pk-layers.bin"), plain = try single.encode()
        let listLength = 4 + Self.manifestWithLayers.pkIndexBaseLayers.reduce(0) { $0 + 2 + $1.name.utf8.count + 8 }
        #expect(layered.count == plain.count + listLength)
        #expect(Array(layered[0..<12]) == Array(plain[0..<12]) && layered[12] == 1 && Array(plain[12..<16]) == [0, 0, 0, 0])
        #expect(Array(layered[32..<plain.count - 4]) == Array(plain[32..<plain.count - 4]))
        // The manifest of a single full index has no flag: older readers read it.
        var older = DecodingLimits()
        older.acceptedRequiredFeatures = []
        #expect(try Manifest.decode(plain, object: "m", limits: older) == single)
    }

    @Test func encodersReproduceTheGoldenBytes() throws {
        for (name, bytes) in try Self.encoded() {
            let golden = try Self.golden(name)
            let firstDifference = (0..<min(bytes.count, golden.count)).first { bytes[$0] != golden[$0] }
                ?? (bytes.count == golden.count ? nil : min(bytes.count, golden.count))
            if let i = firstDifference {
                Issue.record("\(name): encoder output differs from the golden file first at byte \(i) (\(bytes.count) vs \(golden.count) bytes); a byte change needs a new format version and new fixtures")
            }
        }
    }

    /// The hints live only in the optional-feature bit and the formerly reserved field that
    /// v1 readers skip: with both cleared the bytes are a plain v1 manifest of the same content.
    @Test func liveRowHintsChangeOnlyWhatOlderReadersSkip() throws {
        var plain = Self.manifestWithHints
        for i in plain.segments.indices { plain.segments[i].deadRows = nil }
        let hinted = try Self.golden("manifest-live-row-hints.bin"), without = try plain.encode()
        #expect(hinted.count == without.count)
        let differing = Set((0..<hinted.count).filter { hinted[$0] != without[$0] })
        #expect(differing.contains(16), "the optional feature bit")  // header bytes 16..<20
        #expect(differing.isSubset(of: Set(16..<32).union(Set(hinted.count - 4..<hinted.count)).union(Self.reservedOffsets(in: without))),
                "bytes other than the flag, the header CRC, the reserved fields and the CRC changed: \(differing.sorted())")
    }

    /// Offsets of each segment entry's reserved u32 in an encoded manifest.
    static func reservedOffsets(in bytes: [UInt8]) -> Set<Int> {
        let m = try! Manifest.decode(bytes, object: "m")
        var at = 32 + 8 * 4 + 2 + m.writerID.utf8.count + 4 + 1 + 3 + 8 + 2 + m.pkIndexObject.utf8.count + 8 + 4
        var out: Set<Int> = []
        for s in m.segments {
            at += 2 + s.name.utf8.count + 8 + 8 + 4
            out.formUnion(at..<at + 4)
            at += 4 + 8 + 8 + 8
        }
        return out
    }

    /// Damage to any golden file is a typed error naming the object, never a crash or a result.
    @Test func everyFlippedByteOfEveryFixtureIsDetected() throws {
        for (name, _) in try Self.encoded() {
            let golden = try Self.golden(name)
            // Large files: every byte of header, tail and a stride of the body.
            let positions = golden.count <= 4096 ? Array(0..<golden.count)
                : Array(0..<512) + Array(stride(from: 512, to: golden.count - 1024, by: 509)) + Array(golden.count - 1024..<golden.count)
            for i in positions {
                var damaged = golden
                damaged[i] ^= 0x10
                do {
                    try Self.decodeAny(name, damaged)
                    Issue.record("\(name): flipping byte \(i) went undetected")
                } catch let e as FormatError {
                    #expect(e.object == name)
                }
            }
        }
    }
}

extension GoldenFixtureTests {
    /// Decodes a fixture with the decoder its name calls for.
    static func decodeAny(_ name: String, _ bytes: [UInt8], limits: DecodingLimits = .default) throws {
        if name.hasPrefix("manifest") {
            _ = try Manifest.decode(bytes, object: name, limits: limits)
        } else if name.hasPrefix("pkindex") {
            _ = try PKIndex.decode(bytes, object: name, limits: limits)
        } else {
            _ = try SegmentCodec.decode(bytes, object: name, limits: limits)
        }
    }

    /// Offsets where a segment's sections, footer and trailer begin and end.
    static func boundaries(of golden: [UInt8], name: String) throws -> [Int] {
        var edges = [0, 32, golden.count - 32]
        let encoded = try SegmentCodec.encode(try SegmentCodec.decode(golden, object: name))
        edges.append(Int(encoded.footerOffset))
        let tail = try SegmentTail.decode(Array(golden[Int(encoded.tailOffset)...]), tailOffset: encoded.tailOffset,
                                          objectSize: UInt64(golden.count), object: name)
        for s in tail.footer.sections {
            edges.append(Int(s.offset))
            edges.append(Int(s.offset + s.storedLength))
        }
        return edges.flatMap { [$0 - 1, $0, $0 + 1] }
    }

    /// Every golden file cut at every section boundary (and one byte either side), and at every
    /// byte for small files, fails with a typed error naming the object.
    @Test func truncationAtEverySectionBoundaryIsDetected() throws {
        for (name, _) in try Self.encoded() {
            let golden = try Self.golden(name)
            var cuts = name.hasPrefix("segment") ? try Self.boundaries(of: golden, name: name) : []
            if golden.count <= 4096 { cuts += Array(0..<golden.count) }
            for n in Set(cuts).sorted() where n >= 0 && n < golden.count {
                do {
                    try Self.decodeAny(name, Array(golden.prefix(n)))
                    Issue.record("\(name) cut to \(n) bytes decoded")
                } catch let e as FormatError {
                    #expect(e.object == name)
                }
            }
        }
    }
}
