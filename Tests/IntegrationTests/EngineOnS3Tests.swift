import Foundation
import SegmentFormat
import Stores
import Testing
import Tiering
import Vecgo
import _VecgoTestSupport

/// The whole cloud-tiered path against a real S3-compatible server (moto) over HTTP, through
/// our own S3 client.
@Suite struct EngineOnS3Tests {
    static func makeStore(_ tag: String, prefix: String = "db/") async throws -> S3Store {
        var config = S3Configuration(bucket: TestEnvironment.uniqueBucket(tag), prefix: prefix)
        config.endpoint = try TestEnvironment.s3Endpoint()
        config.addressing = .pathStyle
        config.credentials = S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")
        let store = try S3Store(config)
        try await store.createBucketIfNeeded()
        return store
    }

    static func vectors(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
    }

    @Test func writerBuildsDirectlyOnS3AndAStatelessReaderSearchesIt() async throws {
        let store = try await Self.makeStore("e2e")
        let data = Self.vectors(400, 16, seed: 11)
        let writer = try await Vecgo.open(.remote(store), .create(dimension: 16, metric: .l2))
        var ids: [UInt64] = []
        for (i, v) in data.enumerated() {
            ids.append(try await writer.insert(v, metadata: ["n": .int(Int64(i))], payload: [UInt8(i % 256)]))
            if i == 199 { try await writer.commit() }
        }
        try await writer.close()

        let names = try await store.list(prefix: "").map(\.name)
        #expect(names.contains("MANIFEST-00000000000000000001.bin"))
        #expect(names.contains("MANIFEST-00000000000000000002.bin"))
        #expect(names.filter { $0.hasPrefix("segment_") && $0.hasSuffix(".bin") }.count == 2)
        #expect(names.filter { $0.hasPrefix("pkindex_") && $0.hasSuffix(".bin") }.count == 2)

        let cache = FileManager.default.temporaryDirectory.path + "/vecgo-it-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let reader = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cache))
        #expect(reader.dimension == 16)
        #expect(reader.metric == .l2)
        do {
            try await reader.insert(data[0])
            Issue.record("a read-only reader accepted a write")
        } catch let e as VecgoError {
            #expect(e.code == .readOnly)
        }
        for (i, v) in data.enumerated().filter({ $0.offset % 37 == 0 }) {
            #expect(try await reader.search(v, k: 1).first?.id == ids[i])
        }
        let cold = await reader.tierCounters()
        #expect(cold.remoteRequests > 0)
        _ = try await reader.search(data[5], k: 10)
        #expect(await reader.tierCounters().remoteRequests == cold.remoteRequests, "a warm query went to S3")
        try await reader.close()

        // A restarted reader with the same cache directory: the query is served from disk.
        // Everything since it opened: one LIST (finding the latest version is never cached; the
        // size probe that confirms it is not counted), every other read from the disk cache.
        let restarted = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cache))
        #expect(try await restarted.search(data[5], k: 1).first?.id == ids[5])
        let total = await restarted.tierCounters()
        #expect(total.remoteRequests == 1)
        #expect(total.diskHits > 0)
    }

    @Test func racingCommitsOnS3AllLandOnDistinctVersions() async throws {
        let store = try await Self.makeStore("race")
        let seed = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await seed.insert([0, 0])
        try await seed.close()
        let writers = try await (0..<4).asyncMap { _ in try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2)) }
        var ids: [UInt64] = []
        for (i, w) in writers.enumerated() { ids.append(try await w.insert([Float(i), 1])) }
        #expect(Set(ids).count == 4, "generated keys collided across writers")
        let versions = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for w in writers { group.addTask { try await w.commit() } }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(Set(versions).count == 4, "two commits claim one version")
        let manifests = try await store.list(prefix: "MANIFEST-").map(\.name)
        #expect(manifests == (1...versions.max()!).map { Manifest.objectName(version: $0) })
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(Set(try await reader.search([0, 0], k: 10).map(\.id)).isSuperset(of: ids))
    }

    @Test func aDamagedSegmentOnS3IsReportedAsCorruption() async throws {
        let store = try await Self.makeStore("damage")
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2))
        for v in Self.vectors(30, 4, seed: 3) { try await w.insert(v) }
        try await w.close()
        let seg = try #require(try await store.list(prefix: "segment_").first)
        var bytes = try await store.read(seg.name)
        bytes[70] ^= 0x01
        try await store.put(seg.name, bytes)
        let r = try await Vecgo.open(.remote(store), .readOnly)
        do {
            _ = try await r.search([0, 0, 0, 0], k: 1)
            Issue.record("a damaged segment returned results")
        } catch let e as VecgoError {
            #expect(e.code == .corrupted)
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
