import Foundation
import Stores
import Testing
import Tiering

@Suite struct BlockCacheTests {
    @Test func evictsLeastRecentlyUsedUnderBudget() {
        let stats = TierStats()
        let cache = BlockCache(capacityBytes: 3 * 4096, blockSize: 4096, shards: 1, stats: stats)
        let block = [UInt8](repeating: 1, count: 4096)
        for i in 0..<3 { cache.put(BlockKey(object: "o", index: UInt64(i)), block) }
        #expect(cache.get(BlockKey(object: "o", index: 0)) != nil)  // 0 is now most recent
        cache.put(BlockKey(object: "o", index: 3), block)           // evicts 1
        #expect(cache.get(BlockKey(object: "o", index: 1)) == nil)
        #expect(cache.get(BlockKey(object: "o", index: 0)) != nil)
        #expect(cache.bytesUsed <= 3 * 4096)
        #expect(stats.snapshot().ramEvictions == 1)
    }
}

func temporaryDirectory(_ tag: String) -> String {
    let path = FileManager.default.temporaryDirectory.path + "/vecgo-\(tag)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct DiskCacheTests {
    @Test func survivesARestart() async throws {
        let dir = temporaryDirectory("disk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = BlockKey(object: "segment_a.bin", index: 2)
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        do {
            let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 16_384)
            cache.enqueue(key, data)
            await cache.flush()
        }
        let reopened = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 16_384)
        #expect(reopened.get(key) == data)
        #expect(reopened.get(BlockKey(object: "segment_a.bin", index: 3)) == nil)
    }

    @Test func damagedFilesAreEvictedNotServed() async throws {
        let dir = temporaryDirectory("damage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = TierStats()
        let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 4096, stats: stats)
        let key = BlockKey(object: "o", index: 0)
        cache.enqueue(key, Array(repeating: 7, count: 4096))
        await cache.flush()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".vgc") }
        #expect(files.count == 1)
        let path = dir + "/" + files[0]
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 10] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(cache.get(key) == nil)
        #expect(stats.snapshot().diskCorrupt == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func truncatedFilesAreEvicted() async throws {
        let dir = temporaryDirectory("trunc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 4096)
        let key = BlockKey(object: "o", index: 0)
        cache.enqueue(key, Array(repeating: 7, count: 4096))
        await cache.flush()
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".vgc") })
        truncate(dir + "/" + file, 100)
        #expect(cache.get(key) == nil)
    }

    @Test func namesThatLookLikePathsStayInside() async throws {
        let dir = temporaryDirectory("names")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = try DiskCache(directory: dir + "/cache", capacityBytes: 1 << 20, blockSize: 4096)
        let key = BlockKey(object: "../../etc/passwd", index: 0)
        cache.enqueue(key, [1, 2, 3])
        await cache.flush()
        #expect(cache.get(key) == [1, 2, 3])
        let outside = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(outside == ["cache"])
    }

    @Test func staysUnderItsSizeLimit() async throws {
        let dir = temporaryDirectory("limit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = TierStats()
        let cache = try DiskCache(directory: dir, capacityBytes: 3 * 4200, blockSize: 4096, stats: stats)
        for i in 0..<10 {
            cache.enqueue(BlockKey(object: "o", index: UInt64(i)), Array(repeating: UInt8(i), count: 4096))
            await cache.flush()
        }
        #expect(cache.bytesUsed <= 3 * 4200)
        #expect(stats.snapshot().diskEvictions >= 7)
        #expect(cache.get(BlockKey(object: "o", index: 9)) == Array(repeating: 9, count: 4096))
    }
}

@Suite struct CachingStoreTests {
    func makeStore(diskDirectory: String? = nil) async throws -> (CachingStore, LatencyInjectingStore, [UInt8]) {
        let memory = MemoryBlobStore()
        let object = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await memory.put("obj", object)
        let counted = LatencyInjectingStore(memory, profile: .none)
        let stats = TierStats()
        let disk = try diskDirectory.map { try DiskCache(directory: $0, capacityBytes: 1 << 20, blockSize: 16_384, stats: stats) }
        let store = CachingStore(remote: counted, ram: BlockCache(capacityBytes: 1 << 20, blockSize: 4096, stats: stats),
                                 disk: disk, fetchBlockSize: 16_384, maxRequestBytes: 32_768)
        return (store, counted, object)
    }

    @Test func rangesReadCorrectlyAndRepeatFromRAM() async throws {
        let (store, counted, object) = try await makeStore()
        for (lo, hi) in [(0, 10), (4090, 4110), (5000, 60_000), (99_990, 100_000), (99_990, 200_000)] {
            let got = try await store.read("obj", range: UInt64(lo)..<UInt64(hi))
            #expect(got == Array(object[lo..<min(hi, object.count)]), "\(lo)..<\(hi)")
        }
        let before = counted.requestCount
        _ = try await store.read("obj", range: 5000..<60_000)
        #expect(counted.requestCount == before)
    }

    @Test func consecutiveMissesCoalesceIntoFewRequests() async throws {
        let (store, counted, object) = try await makeStore()
        // 100 000 bytes = 7 fetch units of 16 KiB; at most 2 units (32 KiB) per request → 4 requests.
        let got = try await store.read("obj", range: 0..<100_000)
        #expect(got == object)
        #expect(counted.requestCount == 4)
    }

    @Test func concurrentReadersShareOneFetch() async throws {
        let (store, counted, object) = try await makeStore()
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 { group.addTask { try await store.read("obj", range: 100..<200) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == Array(object[100..<200]) })
        #expect(counted.requestCount == 1)
    }

    @Test func restartedReaderIsServedFromDisk() async throws {
        let dir = temporaryDirectory("caching")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (first, _, object) = try await makeStore(diskDirectory: dir)
        _ = try await first.read("obj", range: 1000..<50_000)
        await first.disk?.flush()
        let (second, counted, _) = try await makeStore(diskDirectory: dir)
        #expect(try await second.read("obj", range: 1000..<50_000) == Array(object[1000..<50_000]))
        #expect(counted.requestCount == 0)
        #expect(second.stats.snapshot().diskHits > 0)
    }
}
