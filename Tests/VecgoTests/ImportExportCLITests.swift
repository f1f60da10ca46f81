// `vecgo import` / `vecgo export` and the argument parsing of the `vecgo` tool, run as a
// user would: the built binary on files in a temporary directory.
import Foundation
import Testing
import Vecgo

@Suite struct ImportExportCLITests {
    static let dimension = 4
    static let rows = 60

    /// Row `i`'s vector: small multiples of 1/4, exact in float16 and distinct per row.
    static func vector(_ i: Int) -> [Float] { [Float(i) / 4, Float(i % 7), Float((2 * i) % 5) / 2, 1] }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/vecgo-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A version-1.0 .npy file of `rows` × `dimension` values of `descr` ('<f4' or '<f2').
    static func npy(_ path: String, descr: String) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(rows), \(dimension)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0] + le(UInt16(header.utf8.count)) + Array(header.utf8)
        for i in 0..<rows {
            for v in vector(i) { bytes += descr == "<f2" ? le(Float16(v).bitPattern) : le(v.bitPattern) }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// An .fvecs (float32) or .bvecs (uint8: row i is [i, i%7, 2i%5, 1]) file.
    static func vecs(_ path: String, bytes one: Bool) throws {
        var bytes: [UInt8] = []
        for i in 0..<rows {
            bytes += le(Int32(dimension))
            if one { bytes += [UInt8(i), UInt8(i % 7), UInt8((2 * i) % 5), 1] } else { for v in vector(i) { bytes += le(v.bitPattern) } }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A JSON Lines file: row i has id `i`, metadata and a payload.
    static func jsonl(_ path: String, rows range: Range<Int>, badLine: Int? = nil) throws {
        var text = ""
        for i in range {
            if i + 1 == badLine {
                text += "{\"id\": \(i), \"vector\": [1, 2,]}\n"
                continue
            }
            let v = vector(i).map { "\($0)" }.joined(separator: ", ")
            text += "{\"id\": \(i), \"vector\": [\(v)], \"metadata\": {\"n\": \(i), \"even\": \(i % 2 == 0)}, \"payload\": \"\(Data("p\(i)".utf8).base64EncodedString())\"}\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func liveRows(_ dir: String) async throws -> [LiveRow] {
        let db = try await Vecgo.open(.directory(dir), .readOnly)
        var rows: [LiveRow] = []
        try await db.forEachLiveRow { rows += $0 }
        try await db.close()
        return rows.sorted { $0.id < $1.id }
    }

    @Test(arguments: ["f32.npy", "f16.npy", "rows.fvecs", "rows.bvecs", "rows.jsonl"])
    func importsEachFormatIdempotently(file: String) async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + file
        switch file {
        case "f32.npy": try Self.npy(path, descr: "<f4")
        case "f16.npy": try Self.npy(path, descr: "<f2")
        case "rows.fvecs": try Self.vecs(path, bytes: false)
        case "rows.bvecs": try Self.vecs(path, bytes: true)
        default: try Self.jsonl(path, rows: 0..<Self.rows)
        }
        let db = dir + "/db"
        let offset: UInt64 = file.hasSuffix(".jsonl") ? 0 : 1000  // JSON rows carry their own ids
        for run in 0..<2 {  // the second run upserts the same ids
            let (status, out) = try await VerifyTests.run(["import", db, path, "--metric", "l2", "--batch", "25", "--id-offset", "\(offset)"])
            #expect(status == 0, "run \(run): \(out)")
            #expect(out.contains("imported \(Self.rows) rows"), "\(out)")
            let rows = try await Self.liveRows(db)
            #expect(rows.map(\.id) == (0..<UInt64(Self.rows)).map { $0 + offset }, "run \(run)")
        }
        let query = file.hasSuffix(".bvecs") ? [17, 17 % 7, (2 * 17) % 5, 1].map(Float.init) : Self.vector(17)
        let (status, hits) = try await VerifyTests.run(["search", db, "--vector", query.map { "\($0)" }.joined(separator: ","), "-k", "3"])
        #expect(status == 0)
        #expect(hits.split(separator: "\n").first?.hasPrefix("\(offset + 17)\t0.0") == true, "\(hits)")
        if file.hasSuffix(".jsonl") {
            let row = try #require(try await Self.liveRows(db).first { $0.id == 5 })
            #expect(row.metadata == ["n": .int(5), "even": .bool(false)] && row.payload == Array("p5".utf8))
        }
    }

    /// A malformed line stops the import naming the file and line; the batches before it stay
    /// committed, the batch holding it never is.
    @Test func aMalformedLineStopsTheImportAfterTheCommittedBatches() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mid.jsonl"
        try Self.jsonl(path, rows: 0..<60, badLine: 46)
        let (status, out) = try await VerifyTests.run(["import", dir + "/db", path, "--metric", "l2", "--batch", "20"])
        #expect(status == 2, "\(out)")
        #expect(out.contains("mid.jsonl: line 46: invalid JSON"), "\(out)")
        #expect(out.contains("40 rows are committed"), "\(out)")
        #expect(try await Self.liveRows(dir + "/db").map(\.id) == Array(0..<40), "rows 40..44 of the bad batch must not be visible")
    }

    @Test func badArgumentsNameTheirFlag() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (args, flag) in [(["search", dir, "--vector", "1,2", "-k", "abc"], "-k"),
                             (["search", dir, "--vector", "1,2", "-k", "0"], "-k"),
                             (["search", dir, "--vector", "1,x"], "--vector"),
                             (["vacuum", dir, "--retain", "0"], "--retain"),
                             (["import", dir, "a.npy", "--batch", "0"], "--batch"),
                             (["import", dir, "a.npy", "--metric", "manhattan"], "--metric")] {
            let (status, out) = try await VerifyTests.run(args)
            #expect(status == 64, "\(args): \(out)")
            #expect(out.contains(flag), "\(args) should name \(flag): \(out)")
        }
    }

    @Test(arguments: ["info", "verify", "search", "versions", "compact", "vacuum", "import", "export"])
    func everySubcommandHasHelp(command: String) async throws {
        let (status, out) = try await VerifyTests.run([command, "--help"])
        #expect(status == 0)
        #expect(out.contains("USAGE: vecgo \(command)") && out.contains("--endpoint"), "\(out)")
    }

    /// Export, then import the export elsewhere: the same ids, keys, vectors, metadata and payloads.
    @Test func exportThenImportRoundTrips() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try await Vecgo.open(.directory(dir + "/a"), .create(dimension: 3, metric: .l2))
        for i in 0..<30 {
            try await w.upsert(id: UInt64(i), [Float(i) * 0.1, -1.5e-7, 3], metadata: [
                "s": .string("line \"\(i)\"\n\\"), "i": .int(-Int64(i)), "f": .float(i == 0 ? 2.0 : 1.0 / Double(i)),
                "b": .bool(i % 3 == 0), "l": .stringList(["x", "ü\u{1}"]), "t": .timestamp(microseconds: 1_700_000_000_000_000 + Int64(i)),
            ], payload: i % 2 == 0 ? [0, 255, UInt8(i)] : nil)
        }
        try await w.commit()
        for i in 0..<5 { try await w.upsert(key: "doc-\(i)", [1, 2, Float(i)], metadata: ["k": .int(Int64(i))]) }
        try await w.delete(id: 3)
        try await w.close()
        let (exported, why) = try await VerifyTests.run(["export", dir + "/a", "--output", dir + "/out.jsonl"])
        #expect(exported == 0, "\(why)")
        #expect(why.contains("exported 34 rows of version 2"), "\(why)")
        let (imported, out) = try await VerifyTests.run(["import", dir + "/b", dir + "/out.jsonl", "--metric", "l2"])
        #expect(imported == 0, "\(out)")
        let original = try await Self.liveRows(dir + "/a"), copy = try await Self.liveRows(dir + "/b")
        #expect(original.count == 34)
        #expect(copy == original)
        let (old, first) = try await VerifyTests.run(["export", dir + "/a", "--version", "1"])
        #expect(old == 0 && first.contains("exported 30 rows of version 1"), "\(first)")
        #expect(first.split(separator: "\n").filter { $0.hasPrefix("{\"id\":3,") }.count == 1, "version 1 still has row 3")
        let (f, _) = try await VerifyTests.run(["export", dir + "/b", "--format", "fvecs", "--output", dir + "/out.fvecs"])
        #expect(f == 0)
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/out.fvecs")[.size] as? Int
        #expect(size == 34 * (4 + 3 * 4))
    }
}
