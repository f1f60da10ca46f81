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

    /// A cache in a new directory holding one 4 KiB block, and the path of its file.
    func cacheWithOneBlock(_ tag: String) async throws -> (DiskCache, BlockKey, path: String, dir: String) {
        let dir = temporaryDirectory(tag)
        let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 4096)
        let key = BlockKey(object: "o", index: 0)
        cache.enqueue(key, Array(repeating: 7, count: 4096))
        await cache.flush()
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".vgc") })
        return (cache, key, dir + "/" + file, dir)
    }

    @Test func truncatedFilesAreEvicted() async throws {
        let (cache, key, path, dir) = try await cacheWithOneBlock("trunc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        truncate(path, 100)
        #expect(cache.get(key) == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func partialReadsTouchOnlyTheirPagesAndADamagedPageIsNeverServed() async throws {
        let dir = temporaryDirectory("pages")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = TierStats()
        let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 65_536, stats: stats)
        let key = BlockKey(object: "segment_x.bin", index: 1)
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        cache.enqueue(key, data)
        await cache.flush()
        for r in [0..<1, 100..<5000, 4096..<8192, 49_000..<50_000, 49_000..<70_000, 0..<65_536] {
            #expect(cache.get(key, range: r) == Array(data[r.lowerBound..<min(r.upperBound, data.count)]), "\(r)")
        }
        #expect(stats.snapshot().diskBytes == 1 + 4900 + 4096 + 1000 + 1000 + 50_000)
        // Damage one byte of the last page: the first pages are still served (their own CRCs
        // hold); a read touching the damaged page is a miss and removes the file.
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".vgc") })
        let path = dir + "/" + file
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 3] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(cache.get(key, range: 0..<8192) == Array(data[0..<8192]))
        #expect(cache.get(key, range: 48_000..<50_000) == nil)
        #expect(stats.snapshot().diskCorrupt == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(cache.get(key, range: 0..<10) == nil)
    }

    @Test(arguments: ["VGCBLK01", "VGCBLK02"])
    func filesOfAnOlderCacheLayoutAreReplacedNotServed(_ oldMagic: String) async throws {
        let (cache, key, path, dir) = try await cacheWithOneBlock("old")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.replaceSubrange(0..<8, with: Array(oldMagic.utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(cache.get(key) == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        cache.enqueue(key, Array(repeating: 7, count: 4096))
        await cache.flush()
        #expect(cache.get(key) == Array(repeating: 7, count: 4096))
    }

    /// Two caches on one directory stand for two processes: their files are written under
    /// temporary names and renamed, and evictions hold the directory's lock, so whatever
    /// interleaving happens, every read returns the right bytes or a miss.
    @Test func twoCachesSharingADirectoryNeverServeWrongBytes() async throws {
        let dir = temporaryDirectory("shared")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try DiskCache(directory: dir, capacityBytes: 20 * 4200, blockSize: 4096)
        let b = try DiskCache(directory: dir, capacityBytes: 20 * 4200, blockSize: 4096)
        func block(_ i: Int) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: $0 &+ i &* 13) } }
        let wrong = await withTaskGroup(of: Int.self) { group in
            for (n, cache) in [a, b].enumerated() {
                group.addTask {
                    var wrong = 0
                    for round in 0..<400 {
                        let i = (round * 7 + n * 3) % 60
                        cache.enqueue(BlockKey(object: "o", index: UInt64(i)), block(i))
                        if round % 10 == 0 { await cache.flush() }
                        let j = (round * 11) % 60
                        if let got = cache.get(BlockKey(object: "o", index: UInt64(j))), got != block(j) { wrong += 1 }
                        if let got = (n == 0 ? b : a).get(BlockKey(object: "o", index: UInt64(j))), got != block(j) { wrong += 1 }
                    }
                    await cache.flush()
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!names.contains { $0.hasPrefix(".tmp-") }, "temporary files were left behind")
        // A third cache opened afterwards serves what is there, all of it correct.
        let c = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 4096)
        var served = 0
        for i in 0..<60 {
            if let got = c.get(BlockKey(object: "o", index: UInt64(i))) {
                #expect(got == block(i))
                served += 1
            }
        }
        #expect(served > 0)
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
            // What the files take on disk (whole file-system blocks), not their lengths: the
            // 30-minute soak saw a directory at 9.1 MB under an 8 MiB limit.
            var used = 0
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !name.hasPrefix(".") {
                var st = stat()
                if stat(dir + "/" + name, &st) == 0 { used += Int(st.st_blocks) * 512 }
            }
            #expect(used <= 3 * 4200, "after block \(i) the directory takes \(used) bytes")
        }
        #expect(cache.bytesUsed <= 3 * 4200)
        #expect(stats.snapshot().diskEvictions >= 7)
        #expect(cache.get(BlockKey(object: "o", index: 9)) == Array(repeating: 9, count: 4096))
    }
}

@Suite struct CachingStoreTests {
    func makeStore(diskDirectory: String? = nil, gap: Int = 0, maxRequest: Int = 32_768) async throws -> (CachingStore, LatencyInjectingStore, [UInt8]) {
        let memory = MemoryBlobStore()
        let object = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await memory.put("obj", object)
        let counted = LatencyInjectingStore(memory, profile: .none)
        let stats = TierStats()
        let disk = try diskDirectory.map { try DiskCache(directory: $0, capacityBytes: 1 << 20, blockSize: 16_384, stats: stats) }
        let store = CachingStore(remote: counted, ram: BlockCache(capacityBytes: 1 << 20, blockSize: 4096, stats: stats),
                                 disk: disk, maxRequestBytes: maxRequest, coalesceGapBytes: gap)
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
        // 100 000 bytes = 25 pages of 4 KiB; at most 8 pages (32 KiB) per request → 4 requests.
        let got = try await store.read("obj", range: 0..<100_000)
        #expect(got == object)
        #expect(counted.requestCount == 4)
    }

    @Test func rangesWithinTheGapShareOneRequest() async throws {
        // Pages of 4 KiB: the ranges are in pages 0, 9 and 8, so pages 1-7 (28 KiB) lie between.
        let ranges: [Range<UInt64>] = [10..<20, 40_000..<40_100, 35_000..<36_000]
        let (near, nearCount, object) = try await makeStore(gap: 32_768, maxRequest: 65_536)
        let got = try await near.read("obj", ranges: ranges)
        #expect(got == ranges.map { Array(object[Int($0.lowerBound)..<Int($0.upperBound)]) })
        #expect(nearCount.requestCount == 1)
        #expect(try await near.read("obj", range: 20_000..<20_010) == Array(object[20_000..<20_010]))  // the gap came along
        #expect(nearCount.requestCount == 1)
        let (apart, apartCount, _) = try await makeStore(gap: 16_384, maxRequest: 65_536)
        _ = try await apart.read("obj", ranges: ranges)
        #expect(apartCount.requestCount == 2)  // pages 8-9 together, page 0 alone
    }

    @Test func everyTierKeepsBytesAndALatencyHistogram() async throws {
        let dir = temporaryDirectory("histo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (first, _, _) = try await makeStore(diskDirectory: dir)
        _ = try await first.read("obj", range: 0..<30_000)
        _ = try await first.read("obj", range: 100..<200)
        await first.disk?.flush()
        let s1 = first.stats.snapshot()
        #expect(s1.remoteLatency.count == s1.remoteRequests && s1.remoteRequests == 1)
        #expect(s1.remoteBytes == 32_768)
        #expect(s1.ramLatency.count == 1 && s1.ramBytes == 4096)
        let (second, _, _) = try await makeStore(diskDirectory: dir)
        _ = try await second.read("obj", range: 5000..<6000)
        let s2 = second.stats.snapshot()
        #expect(s2.diskHits == 1 && s2.diskLatency.count == 1)
        #expect(s2.diskBytes == 4096)  // one page, not the 16 KiB block
        #expect(s2.diskMisses == 0 && s2.remoteRequests == 0)
        #expect(s2.diskLatency.percentileMicros(0.5) != nil && s2.remoteLatency.percentileMicros(0.5) == nil)
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

@Suite struct LatencyHistogramTests {
    @Test func percentilesFallInTheRightBuckets() {
        let h = LatencyHistogram()
        for _ in 0..<98 { h.record(nanos: 1_000) }
        h.record(nanos: 1_000_000)
        h.record(nanos: 50_000_000)
        let s = h.snapshot()
        #expect(s.count == 100)
        let p50 = try! #require(s.percentileMicros(0.5))
        #expect(p50 >= 1.0 && p50 <= 1.0 * 1.25)
        let p99 = try! #require(s.percentileMicros(0.99))
        #expect(p99 >= 1_000 && p99 <= 1_250)
        let max = try! #require(s.percentileMicros(1))
        #expect(max >= 50_000 && max <= 62_500)
        #expect(s.since(s).count == 0)
        #expect(LatencyHistogram().snapshot().percentileMicros(0.5) == nil)
    }
}
