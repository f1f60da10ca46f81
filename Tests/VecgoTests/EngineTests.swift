import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

func randomVectors(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
}

func bruteForce(_ data: [(UInt64, [Float])], _ q: [Float], k: Int) -> [UInt64] {
    func l2(_ v: [Float]) -> Double {
        var s = 0.0
        for (a, b) in zip(v, q) { s += Double(a - b) * Double(a - b) }
        return s
    }
    let scored: [(id: UInt64, d: Double)] = data.map { (id: $0.0, d: l2($0.1)) }
    let sorted = scored.sorted { $0.d < $1.d || ($0.d == $1.d && $0.id < $1.id) }
    return sorted.prefix(k).map(\.id)
}

@Suite struct EngineTests {
    @Test func writerCommitsAndReaderOpensFromTheStoreAlone() async throws {
        let store = MemoryBlobStore()
        let vectors = randomVectors(300, 8, seed: 1)
        let writer = try await Vecgo.open(.remote(store), .create(dimension: 8, metric: .l2))
        var rows: [(UInt64, [Float])] = []
        for (i, v) in vectors.enumerated() {
            rows.append((try await writer.insert(v, metadata: ["i": .int(Int64(i))]), v))
            if i == 149 { #expect(try await writer.commit() >= 1) }
        }
        try await writer.close()
        let last = await writer.version
        let names = try await store.list(prefix: "").map(\.name)
        // Versions 1...last, one of them the reservation of generated keys (no data change).
        #expect(names.filter { $0.hasPrefix("MANIFEST-") } == (1...last).map { Manifest.objectName(version: $0) })
        #expect(names.filter { $0.hasPrefix("segment_") }.count == 2)
        #expect(names.filter { $0.hasPrefix("pkindex_") }.count == 2)

        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(reader.dimension == 8)
        #expect(reader.metric == .l2)
        #expect(await reader.version == last)
        for q in randomVectors(5, 8, seed: 2) {
            let got = try await reader.search(q, k: 7).map(\.id)
            #expect(got == bruteForce(rows, q, k: 7))
        }
    }

    @Test func pendingRowsAreSearchableBeforeCommit() async throws {
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: 2, metric: .l2))
        let a = try await db.insert([0, 0])
        _ = try await db.insert([5, 5])
        #expect(try await db.search([0.1, 0], k: 1).first?.id == a)
        #expect(await db.pendingCount == 2)
    }

    @Test func closeCommitsPendingRows() async throws {
        let store = MemoryBlobStore()
        let db = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        let id = try await db.insert([1, 2])
        try await db.close()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await reader.search([1, 2], k: 1).map(\.id) == [id])
    }

    @Test func readOnlyHandlesRefuseWrites() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.insert([1, 1])
        try await w.close()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        await #expect(throws: VecgoError.self) { try await r.insert([1, 1]) }
        do {
            try await r.insert([1, 1])
        } catch let e as VecgoError {
            #expect(e.code == .readOnly)
        }
        do {
            try await r.commit()
            Issue.record("commit on a read-only handle succeeded")
        } catch let e as VecgoError {
            #expect(e.code == .readOnly)
        }
    }

    @Test func badInputGetsTypedErrors() async throws {
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: 3, metric: .l2))
        func code(_ body: () async throws -> Void) async -> VecgoError.Code? {
            do { try await body(); return nil } catch let e as VecgoError { return e.code } catch { return nil }
        }
        #expect(await code { try await db.insert([1, 2]) } == .dimensionMismatch)
        #expect(await code { try await db.insert([1, .nan, 2]) } == .invalidArgument)
        #expect(await code { try await db.insert([1, .infinity, 2]) } == .invalidArgument)
        #expect(await code { _ = try await db.search([1, 2, 3], k: 0) } == .invalidArgument)
        #expect(await code { _ = try await db.search([1, 2, 3], k: -1) } == .invalidArgument)
        #expect(await code { _ = try await db.search([1, 2], k: 1) } == .dimensionMismatch)
        #expect(await code { _ = try await db.search([.nan, 2, 3], k: 1) } == .invalidArgument)
    }

    @Test func openingNothingWithoutCreateIsNotFound() async throws {
        do {
            _ = try await Vecgo.open(.remote(MemoryBlobStore()), .readOnly)
            Issue.record("opened a database that does not exist")
        } catch let e as VecgoError {
            #expect(e.code == .notFound)
        }
    }

    @Test func createWithADifferentShapeIsRefused() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2))
        try await w.insert([1, 2, 3, 4])
        try await w.close()
        do {
            _ = try await Vecgo.open(.remote(store), .create(dimension: 5, metric: .l2))
            Issue.record("opened with a different dimension")
        } catch let e as VecgoError {
            #expect(e.code == .invalidArgument)
        }
    }

    @Test func cosineAndDotRankCorrectly() async throws {
        let cos = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: 2, metric: .cosine))
        let east = try await cos.insert([10, 0])
        _ = try await cos.insert([0, 1])
        #expect(try await cos.search([1, 0.1], k: 1).first?.id == east)
        let dot = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: 2, metric: .dot))
        _ = try await dot.insert([1, 0])
        let big = try await dot.insert([3, 0])
        #expect(try await dot.search([1, 0], k: 1).first?.id == big)
    }

    @Test func aCorruptSegmentIsReportedNeverSearched() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2))
        for v in randomVectors(20, 4, seed: 5) { try await w.insert(v) }
        try await w.close()
        let seg = try #require(try await store.list(prefix: "segment_").first)
        var bytes = try await store.read(seg.name)
        bytes[100] ^= 0xFF  // inside the vector section
        try await store.put(seg.name, bytes)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        do {
            _ = try await r.search([0, 0, 0, 0], k: 3)
            Issue.record("a damaged segment produced results")
        } catch let e as VecgoError {
            #expect(e.code == .corrupted)
            #expect(e.message.contains(seg.name))
        }
    }

    @Test func writersOnTheSameVersionMergeTheirRows() async throws {
        let store = MemoryBlobStore()
        let setup = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await setup.insert([0, 0])
        try await setup.close()
        let a = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        let b = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        let idA = try await a.insert([1, 1])
        let idB = try await b.insert([2, 2])
        #expect(idA != idB)
        let va = try await a.commit()
        let vb = try await b.commit()  // lost the race to a: rebased on a's version
        #expect(vb > va)
        #expect(await b.pendingCount == 0)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        #expect(await r.version == vb)
        let all = Set(try await r.search([0, 0], k: 10).map(\.id))
        #expect(all.count == 3 && all.contains(idA) && all.contains(idB))
    }

    @Test func changingAKeyAnotherWriterChangedIsAConflictThatKeepsThePendingWrites() async throws {
        let store = MemoryBlobStore()
        let setup = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await setup.upsert(id: 7, [0, 0])
        try await setup.close()
        let a = try await Vecgo.open(.remote(store))
        let b = try await Vecgo.open(.remote(store))
        try await a.upsert(id: 7, [1, 1])
        try await b.upsert(id: 7, [2, 2])
        try await b.upsert(id: 8, [3, 3])
        try await a.commit()
        let error = await #expect(throws: VecgoError.self) { try await b.commit() }
        #expect(error?.code == .conflict)
        #expect(error?.message.contains("key 7") == true)
        #expect(await b.pendingCount == 2)
        // Disjoint keys merge: a third writer changing another key commits on top.
        let c = try await Vecgo.open(.remote(store))
        let d = try await Vecgo.open(.remote(store))
        try await c.upsert(id: 20, [5, 5])
        try await d.delete(id: 7)
        try await c.commit()
        try await d.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        let ids = try await r.search([0, 0], k: 10).map(\.id)
        #expect(Set(ids) == [20])
    }

    @Test func readersRefreshToNewVersions() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.insert([0, 0])
        try await w.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        let id = try await w.insert([9, 9])
        try await w.commit()
        #expect(try await r.search([9, 9], k: 1).first?.id != id)
        #expect(try await r.refresh() == (await w.version))
        #expect(try await r.search([9, 9], k: 1).first?.id == id)
    }

    @Test func localDirectoryBackendWorksAcrossHandles() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/vecgo-engine-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try await Vecgo.open(.directory(dir), .create(dimension: 3, metric: .l2))
        let id = try await w.insert([1, 2, 3], payload: [1, 2, 3])
        try await w.close()
        let r = try await Vecgo.open(.directory(dir), .readOnly, .cacheDirectory(dir + "-cache"))
        defer { try? FileManager.default.removeItem(atPath: dir + "-cache") }
        #expect(try await r.search([1, 2, 3], k: 1).map(\.id) == [id])
    }
}

@Suite struct SegmentLayoutEngineTests {
    static func clustered(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
        var rng = SeededRNG(seed: seed)
        let centers = (0..<10).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
        return (0..<n).map { i in centers[i % 10].map { $0 + Float.random(in: -0.2...0.2, using: &rng) } }
    }

    @Test func ivfSegmentsAnswerWithHighRecallAndReadOnlyProbedPartitions() async throws {
        let memory = MemoryBlobStore()
        let counted = LatencyInjectingStore(memory, profile: .none)
        let data = Self.clustered(3000, 16, seed: 21)
        let w = try await Vecgo.open(.remote(counted), .create(dimension: 16, metric: .l2), .ivfThreshold(1000))
        var rows: [(UInt64, [Float])] = []
        for v in data { rows.append((try await w.insert(v, metadata: ["x": .int(1)]), v)) }
        try await w.close()
        let seg = try #require(try await memory.list(prefix: "segment_").first)
        let contents = try SegmentCodec.decode(try await memory.read(seg.name), object: seg.name)
        let ivf = try #require(contents.ivf)
        #expect(ivf.nlist == 54)  // ⌊√3000⌋
        #expect(Set(contents.ids) == Set(rows.map(\.0)))

        // A cold reader with a small fetch unit would read few bytes; here: recall and correctness.
        let r = try await Vecgo.open(.remote(counted), .readOnly)
        var hits = 0, total = 0
        for q in Self.clustered(40, 16, seed: 22) {
            let got = try await r.search(q, k: 10, options: SearchOptions(nprobe: 8)).map(\.id)
            let want = bruteForce(rows, q, k: 10)
            hits += Set(got).intersection(want).count
            total += 10
        }
        #expect(Double(hits) / Double(total) >= 0.95, "IVF recall \(Double(hits) / Double(total))")
        // With every partition probed the answer is exact.
        let q = data[17]
        #expect(try await r.search(q, k: 5, options: SearchOptions(nprobe: 1000)).map(\.id) == bruteForce(rows, q, k: 5))
    }

    @Test func graphSegmentsLoadTheStoredGraph() async throws {
        let store = MemoryBlobStore()
        let data = Self.clustered(2500, 8, seed: 23)
        let w = try await Vecgo.open(.remote(store), .create(dimension: 8, metric: .l2))
        var rows: [(UInt64, [Float])] = []
        for v in data { rows.append((try await w.insert(v), v)) }
        try await w.close()
        let seg = try #require(try await store.list(prefix: "segment_").first)
        let contents = try SegmentCodec.decode(try await store.read(seg.name), object: seg.name)
        #expect(contents.graph != nil)
        #expect(contents.ivf == nil)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        var hits = 0
        let queries = Self.clustered(30, 8, seed: 24)
        for q in queries {
            hits += Set(try await r.search(q, k: 10, options: SearchOptions(ef: 128)).map(\.id)).intersection(bruteForce(rows, q, k: 10)).count
        }
        #expect(Double(hits) / Double(queries.count * 10) >= 0.95)
    }

    @Test func aDamagedPartitionIsReportedNotSearched() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2), .ivfThreshold(100))
        for v in Self.clustered(400, 4, seed: 25) { try await w.insert(v) }
        try await w.close()
        let seg = try #require(try await store.list(prefix: "segment_").first)
        var bytes = try await store.read(seg.name)
        bytes[64 + 3] ^= 0x40  // inside the first rows of the vector section (partition 0)
        try await store.put(seg.name, bytes)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        do {
            _ = try await r.search([0, 0, 0, 0], k: 3, options: SearchOptions(nprobe: 1000, scan: .exact))
            Issue.record("a damaged partition produced results")
        } catch let e as VecgoError {
            #expect(e.code == .corrupted)
        }
    }
}
