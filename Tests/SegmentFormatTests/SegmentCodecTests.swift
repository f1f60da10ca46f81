import Foundation
import SegmentFormat
import Testing

@Suite struct SegmentCodecTests {
    static func sample(rows: Int = 50, dimension: Int = 7) -> SegmentContents {
        var c = SegmentContents(dimension: dimension, metric: 1)
        for r in 0..<rows {
            c.ids.append(UInt64(1000 + r))
            c.vectors += (0..<dimension).map { Float(r) + Float($0) / 10 }
            c.metadata.append(r % 3 == 0 ? [:] : [
                "name": .string("row \(r) ✓"), "n": .int(Int64(r) - 25), "x": .float(Double(r) / 3),
                "flag": .bool(r % 2 == 0), "tags": .stringList(["a", "b\(r)"]),
                "at": .timestamp(microseconds: 1_700_000_000_000_000 + Int64(r)),
            ])
            c.payloads.append(r % 4 == 0 ? [] : Array("payload-\(r)".utf8))
        }
        return c
    }

    @Test func roundTripsEveryColumn() throws {
        let c = Self.sample()
        let encoded = try SegmentCodec.encode(c)
        #expect(try SegmentCodec.decode(encoded.bytes, object: "s.bin") == c)
        #expect(encoded.footerOffset + UInt64(encoded.tailLength) == UInt64(encoded.bytes.count))
    }

    @Test func encodingIsDeterministic() throws {
        #expect(try SegmentCodec.encode(Self.sample()).bytes == SegmentCodec.encode(Self.sample()).bytes)
    }

    @Test func emptySegmentRoundTrips() throws {
        let c = SegmentContents(dimension: 3, metric: 2)
        #expect(try SegmentCodec.decode(SegmentCodec.encode(c).bytes, object: "e.bin") == c)
    }

    @Test func vectorSectionIsAlignedAndUncompressed() throws {
        let c = Self.sample(rows: 100, dimension: 16)
        let encoded = try SegmentCodec.encode(c)
        let tail = Array(encoded.bytes[Int(encoded.footerOffset)...])
        let trailer = try SegmentTrailer.decode(Array(tail.suffix(32)), object: "s", objectSize: UInt64(encoded.bytes.count))
        let footer = try SegmentFooter.decode(Array(tail.prefix(Int(trailer.footerLength))), object: "s",
                                              offset: trailer.footerOffset, expectedCRC: trailer.footerCRC,
                                              objectSize: UInt64(encoded.bytes.count))
        let v = try #require(footer.section(.vectors))
        #expect(v.offset % 64 == 0)
        #expect(!v.isCompressed)
        #expect(v.storedLength == 100 * 16 * 4)
        #expect(footer.section(.ids)?.isCompressed == true)
    }

    @Test func rejectsInconsistentContents() {
        var c = Self.sample()
        c.vectors.removeLast()
        #expect(throws: FormatError.self) { try SegmentCodec.encode(c) }
    }

    /// Every single-byte change of a segment is detected as a typed error, never a wrong result.
    @Test func everyFlippedByteIsDetected() throws {
        let bytes = try SegmentCodec.encode(Self.sample(rows: 12, dimension: 5)).bytes
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x5A
            do {
                _ = try SegmentCodec.decode(damaged, object: "s.bin")
                Issue.record("flipping byte \(i) of \(bytes.count) went undetected")
            } catch let e as FormatError {
                #expect(e.object == "s.bin")
                #expect(e.offset <= UInt64(bytes.count))
            }
        }
    }

    @Test func everyTruncationIsDetected() throws {
        let bytes = try SegmentCodec.encode(Self.sample(rows: 12, dimension: 5)).bytes
        for n in 0..<bytes.count {
            #expect(throws: FormatError.self, "truncation to \(n) bytes") {
                try SegmentCodec.decode(Array(bytes.prefix(n)), object: "s.bin")
            }
        }
    }

    @Test func unknownVersionIsUnsupported() throws {
        var bytes = try SegmentCodec.encode(Self.sample()).bytes
        bytes[8] = 99  // format version, low byte
        // Re-seal the header CRC so only the version is wrong.
        let crc = crc32c(Array(bytes[0..<28]))
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[28 + i] = $0[i] } }
        let error = try #require(throws: FormatError.self) { try SegmentCodec.decode(bytes, object: "s.bin") }
        #expect(error.code == .unsupportedVersion)
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }
}

@Suite struct ManifestAndPKIndexTests {
    static let manifest = Manifest(
        version: 7, parentVersion: 6, commitTimeMicros: 1_700_000_000_000_000, writerEpoch: 2, writerID: "w1",
        dimension: 128, metric: 1, nextID: 501, pkIndexObject: "pkindex_00000000000000000007-w1.bin", pkIndexSize: 99,
        segments: [SegmentRef(name: "segment_w1-1.bin", size: 1000, tailOffset: 900, tailLength: 100, rowCount: 500,
                              minID: 1, maxID: 500)])

    @Test func manifestRoundTrips() throws {
        #expect(try Manifest.decode(Self.manifest.encode(), object: "m") == Self.manifest)
    }

    @Test func manifestNamesHaveTwentyDigits() {
        #expect(Manifest.objectName(version: 42) == "MANIFEST-00000000000000000042.bin")
        #expect(Manifest.version(fromObjectName: "MANIFEST-00000000000000000042.bin") == 42)
        #expect(Manifest.version(fromObjectName: "MANIFEST-42.bin") == nil)
        #expect(Manifest.version(fromObjectName: "segment_1.bin") == nil)
    }

    @Test func everyFlippedManifestByteIsDetected() throws {
        let bytes = try Self.manifest.encode()
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x01
            #expect(throws: FormatError.self, "byte \(i)") { try Manifest.decode(damaged, object: "m") }
        }
        for n in 0..<bytes.count {
            #expect(throws: FormatError.self, "truncated to \(n)") { try Manifest.decode(Array(bytes.prefix(n)), object: "m") }
        }
    }

    @Test func pkIndexRoundTripsAndDetectsDamage() throws {
        let pk = PKIndex(version: 3, segments: ["a.bin", "b.bin"],
                         entries: [1: .init(segment: 0, row: 0), 9: .init(segment: 1, row: 4)], tombstones: [5, 6])
        let bytes = try pk.encode()
        #expect(try PKIndex.decode(bytes, object: "p") == pk)
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x80
            #expect(throws: FormatError.self, "byte \(i)") { try PKIndex.decode(damaged, object: "p") }
        }
    }
}

@Suite struct LZ4FrameTests {
    @Test func roundTrips() throws {
        let raw = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 / 7) }
        let frame = LZ4Frame.compress(raw)
        #expect(frame.count < raw.count)
        #expect(try LZ4Frame.decompress(frame, expectedSize: raw.count, object: "x", offset: 0) == raw)
    }

    @Test func wrongDeclaredSizeIsCorruption() throws {
        let frame = LZ4Frame.compress(Array(repeating: 7, count: 1000))
        #expect(throws: FormatError.self) { try LZ4Frame.decompress(frame, expectedSize: 999, object: "x", offset: 0) }
        #expect(throws: FormatError.self) { try LZ4Frame.decompress(frame, expectedSize: 1001, object: "x", offset: 0) }
    }

    /// Our frames are standard: the reference `lz4` tool decodes them.
    @Test func referenceToolDecodesOurFrames() throws {
        let raw = Array(String(repeating: "vecgo frames are standard LZ4 frames. ", count: 500).utf8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lz4-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.lz4"), output = dir.appendingPathComponent("out")
        try Data(LZ4Frame.compress(raw)).write(to: input)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/lz4")
        p.arguments = ["-d", "-q", "-f", input.path, output.path]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try Array(Data(contentsOf: output)) == raw)
    }
}
