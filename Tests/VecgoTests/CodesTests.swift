import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// IVF segments carry 1-bit and SQ8 codes: a query scans the codes of the probed partitions and
/// re-ranks a few rows with exact vectors, each read alone and checked by its row's CRC.
@Suite struct CodesTests {
    /// 3 000 clustered rows of dimension 32 in one IVF segment (with codes).
    static func database(rows count: Int = 3_000, dim: Int = 32) async throws -> (MemoryBlobStore, [(UInt64, [Float])]) {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: dim, metric: .l2), .ivfThreshold(1000))
        var rows: [(UInt64, [Float])] = []
        for v in SegmentLayoutEngineTests.clustered(count, dim, seed: 60) { rows.append((try await w.insert(v), v)) }
        try await w.close()
        return (store, rows)
    }

    @Test func ivfSegmentsCarryBothKindsOfCodes() async throws {
        let (store, rows) = try await Self.database(rows: 3_000)
        let seg = try #require(try await store.list(prefix: "segment_").first)
        let contents = try SegmentCodec.decode(try await store.read(seg.name), object: seg.name)
        let codes = try #require(contents.codes)
        #expect(codes.codebook.kinds == [.binary, .sq8])
        #expect(codes.codebook.paddedDimension == 64)
        #expect(codes.binary.count == rows.count * (64 / 8 + 12))
        #expect(codes.sq8.count == rows.count * 32)
    }

    /// Every scan kind finds the true neighbours; exact vectors are read only for the rows re-ranked.
    @Test(arguments: [CodeScan.automatic, .binary, .sq8, .exact])
    func everyScanFindsTheNearestRows(scan: CodeScan) async throws {
        let (store, rows) = try await Self.database()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        var hits = 0, total = 0
        for q in SegmentLayoutEngineTests.clustered(30, 32, seed: 61) {
            let got = try await r.search(q, k: 10, options: SearchOptions(nprobe: 16, scan: scan)).map(\.id)
            hits += Set(got).intersection(bruteForce(rows, q, k: 10)).count
            total += 10
        }
        #expect(Double(hits) / Double(total) >= 0.9, "recall \(Double(hits) / Double(total)) with \(scan)")
        // Distances are exact whatever was scanned: the nearest row of a stored vector is itself at 0.
        let q = rows[123].1
        let best = try #require(try await r.search(q, k: 1, options: SearchOptions(nprobe: 1000, scan: scan)).first)
        #expect(best.id == rows[123].0)
        #expect(best.distance == 0)
    }

    @Test func includeVectorReadsTheRowAloneAndChecksIt() async throws {
        let (store, rows) = try await Self.database(rows: 3_000)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        let hits = try await r.search(rows[42].1, k: 3, include: [.vector])
        let byID = Dictionary(uniqueKeysWithValues: rows)
        for h in hits { #expect(h.vector == byID[h.id]) }
    }

    /// Damage to a re-ranked row's vector is caught by the CRC in its row info; damage to a
    /// code block by the block's CRC in the code book.
    @Test func damagedVectorsAndCodesAreReported() async throws {
        let (store, _) = try await Self.database(rows: 1_500, dim: 8)
        let seg = try #require(try await store.list(prefix: "segment_").first)
        let original = try await store.read(seg.name)
        let e = try SegmentCodec.decode(original, object: seg.name)
        let encoded = try SegmentCodec.encode(e)
        let tail = try SegmentTail.decode(Array(original[Int(encoded.tailOffset)...]), tailOffset: encoded.tailOffset,
                                          objectSize: UInt64(original.count), object: seg.name)
        let vectors = try #require(tail.footer.section(.vectors)), codes = try #require(tail.footer.section(.ivfCodes))
        for (what, at) in [("vector", Int(vectors.offset) + 5), ("codes", Int(codes.offset) + 20)] {
            var damaged = original
            damaged[at] ^= 0x40
            try await store.put(seg.name, damaged)
            let r = try await Vecgo.open(.remote(store), .readOnly)
            do {
                _ = try await r.search(e.vectors.prefix(8).map { $0 }, k: 3, options: SearchOptions(nprobe: 1000, scan: .sq8, rerank: 1_500))
                Issue.record("damaged \(what) went unnoticed")
            } catch let error as VecgoError {
                #expect(error.code == .corrupted, "\(what): \(error)")
                #expect(error.message.contains(seg.name))
            }
        }
        try await store.put(seg.name, original)
    }

    /// Segments written before codes existed (IVF without code sections) are still searched, by
    /// their exact vectors.
    @Test func segmentsWithoutCodesAreSearchedByExactVectors() async throws {
        let (store, rows) = try await Self.database(rows: 3_000)
        let name = try #require(try await store.list(prefix: "MANIFEST-").last?.name)
        var manifest = try Manifest.decode(try await store.read(name), object: name)
        let seg = manifest.segments[0]
        var contents = try SegmentCodec.decode(try await store.read(seg.name), object: seg.name)
        contents.codes = nil
        let old = try SegmentCodec.encode(contents)
        try await store.put("segment_old.bin", old.bytes)
        manifest.segments[0] = SegmentRef(name: "segment_old.bin", size: UInt64(old.bytes.count), tailOffset: old.tailOffset,
                                          tailLength: old.tailLength, rowCount: seg.rowCount, minID: seg.minID, maxID: seg.maxID,
                                          deadRows: seg.deadRows)
        manifest.version += 1
        manifest.parentVersion += 1
        try await store.putIfAbsent(Manifest.objectName(version: manifest.version), try manifest.encode())
        let r = try await Vecgo.open(.remote(store), .readOnly)
        #expect(await r.version == manifest.version)
        var hits = 0
        let queries = SegmentLayoutEngineTests.clustered(20, 32, seed: 63)
        for q in queries {
            hits += Set(try await r.search(q, k: 10, options: SearchOptions(nprobe: 16)).map(\.id)).intersection(bruteForce(rows, q, k: 10)).count
        }
        #expect(Double(hits) / Double(queries.count * 10) >= 0.9)
    }

    /// Filters still return k matching rows when rows are chosen by their codes.
    @Test func filteredSearchesOverCodesReturnMatchingRows() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 16, metric: .l2), .ivfThreshold(1000))
        let data = SegmentLayoutEngineTests.clustered(4_000, 16, seed: 64)
        for (i, v) in data.enumerated() { try await w.insert(v, metadata: ["even": .bool(i % 2 == 0), "i": .int(Int64(i))]) }
        try await w.close()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        let hits = try await r.search(data[7], k: 10, filter: .equals("even", .bool(true)), include: [.metadata])
        #expect(hits.count == 10)
        #expect(hits.allSatisfy { $0.metadata?["even"] == .bool(true) })
        let rare = try await r.search(data[7], k: 5, filter: .range("i", min: .int(3_990), max: nil), include: [.metadata])
        #expect(rare.count == 5)
    }
}
