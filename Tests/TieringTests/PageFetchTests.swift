// Tests of page-granular remote fetches (coalescing, splitting, sharing in-flight GETs) and of
// the sparse disk block files they fill.
import Foundation
import Stores
import Synchronization
import Testing
@testable import Tiering

/// An in-memory store that records every ranged GET and how many were in flight at once, and
/// can hold each GET for a while so that concurrent reads overlap.
final class RecordingStore: BlobStore {
    let base = MemoryBlobStore()
    let delayMillis: UInt64
    private let log = Mutex<Log>(Log())

    struct Log {
        var ranges: [Range<UInt64>] = []
        var inFlight = 0
        var maxInFlight = 0
    }

    init(delayMillis: UInt64 = 0) { self.delayMillis = delayMillis }

    /// The ranges of every GET so far, in the order they were sent.
    var ranges: [Range<UInt64>] { log.withLock { $0.ranges } }
    /// The most GETs that were in flight at one time.
    var maxInFlight: Int { log.withLock { $0.maxInFlight } }
    func reset() { log.withLock { $0 = Log() } }

    func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        log.withLock {
            $0.ranges.append(range)
            $0.inFlight += 1
            $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
        }
        defer { log.withLock { $0.inFlight -= 1 } }
        if delayMillis > 0 { try await Task.sleep(nanoseconds: delayMillis * 1_000_000) }
        return try await base.read(name, range: range)
    }
    func put(_ name: String, _ bytes: [UInt8]) async throws { try await base.put(name, bytes) }
    func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws { try await base.putIfAbsent(name, bytes) }
    func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        await base.list(prefix: prefix, startAfter: startAfter)
    }
    func delete(_ name: String) async throws { await base.delete(name) }
    func size(_ name: String) async throws -> UInt64 { try await base.size(name) }
}

/// `count` bytes of a seeded xorshift stream (no 4 KiB period, so a page in the wrong place shows).
func pattern(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var x = seed
    out.withUnsafeMutableBytes { raw in
        var i = 0
        while i < count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            var v = x
            for _ in 0..<min(8, count - i) {
                raw[i] = UInt8(truncatingIfNeeded: v)
                v >>= 8
                i += 1
            }
        }
    }
    return out
}

let KiB = 1024, MiB = 1 << 20

@Suite struct PageFetchTests {
    /// A caching store with the default fetch settings (unless given) over a recording store
    /// holding `object` as "obj"; a disk cache with the default 4 MiB blocks when `diskDirectory`.
    static func makeStore(_ object: [UInt8], diskDirectory: String? = nil, delayMillis: UInt64 = 0,
                          maxRequestBytes: Int = 8 << 20, coalesceGapBytes: Int = 64 << 10)
        async throws -> (CachingStore, RecordingStore) {
        let remote = RecordingStore(delayMillis: delayMillis)
        try await remote.put("obj", object)
        let stats = TierStats()
        let disk = try diskDirectory.map { try DiskCache(directory: $0, capacityBytes: 1 << 30, stats: stats) }
        let store = CachingStore(remote: remote, ram: BlockCache(capacityBytes: 256 << 20, stats: stats), disk: disk,
                                 maxRequestBytes: maxRequestBytes, coalesceGapBytes: coalesceGapBytes)
        return (store, remote)
    }

    static func slice(_ object: [UInt8], _ r: Range<UInt64>) -> [UInt8] {
        Array(object[Int(r.lowerBound)..<min(Int(r.upperBound), object.count)])
    }

    @Test func aSmallReadOfALargeObjectFetchesOnlyItsPages() async throws {
        let dir = temporaryDirectory("small")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(64 * MiB)
        let (store, remote) = try await Self.makeStore(object, diskDirectory: dir)
        let range = UInt64(32 * MiB + 1000)..<UInt64(32 * MiB + 1000 + 10 * KiB)
        #expect(try await store.read("obj", range: range) == Self.slice(object, range))
        let gets = remote.ranges
        #expect(gets.count == 1)
        let get = try #require(gets.first)
        #expect(get.count <= 12 * KiB, "fetched \(get.count) bytes for a 10 KiB read")
        #expect(get.lowerBound % 4096 == 0 && get.lowerBound <= range.lowerBound && get.upperBound >= range.upperBound)
        let s = store.stats.snapshot()
        #expect(s.remoteRequests == 1 && s.remoteBytes == get.count)
        #expect(s.diskMisses == 1 && s.diskHits == 0)
        // The same bytes again come from RAM.
        #expect(try await store.read("obj", range: range) == Self.slice(object, range))
        #expect(remote.ranges.count == 1)
        #expect(store.stats.snapshot().ramHits == 3)
    }

    @Test func rangesWithinTheGapShareOneGETAndTheGapIsCached() async throws {
        let object = pattern(4 * MiB)
        let (store, remote) = try await Self.makeStore(object)
        let a = UInt64(MiB)..<UInt64(MiB + 100), b = a.upperBound + UInt64(32 * KiB)..<a.upperBound + UInt64(32 * KiB + 100)
        #expect(try await store.read("obj", ranges: [a, b]) == [Self.slice(object, a), Self.slice(object, b)])
        #expect(remote.ranges.count == 1)
        #expect(remote.ranges[0].lowerBound <= a.lowerBound && remote.ranges[0].upperBound >= b.upperBound)
        let inGap = a.upperBound + UInt64(16 * KiB)..<a.upperBound + UInt64(16 * KiB + 10)
        #expect(try await store.read("obj", range: inGap) == Self.slice(object, inGap))
        #expect(remote.ranges.count == 1)
    }

    @Test func rangesFarApartGoInParallelGETs() async throws {
        let object = pattern(4 * MiB)
        let (store, remote) = try await Self.makeStore(object, delayMillis: 100)
        let a = UInt64(MiB)..<UInt64(MiB + 100), b = a.lowerBound + UInt64(MiB)..<a.lowerBound + UInt64(MiB + 100)
        #expect(try await store.read("obj", ranges: [a, b]) == [Self.slice(object, a), Self.slice(object, b)])
        let gets = remote.ranges
        #expect(gets.count == 2)
        #expect(gets.allSatisfy { $0.count == 4096 })
        #expect(remote.maxInFlight == 2, "the two GETs were not in flight together")
    }

    @Test func aRunAboveMaxRequestBytesIsSplitIntoParallelGETs() async throws {
        let object = pattern(4 * MiB)
        let (store, remote) = try await Self.makeStore(object, delayMillis: 50, maxRequestBytes: 64 * KiB)
        let range = UInt64(100 * KiB)..<UInt64(300 * KiB)  // 50 pages → 4 GETs of at most 16 pages
        #expect(try await store.read("obj", range: range) == Self.slice(object, range))
        let gets = remote.ranges.sorted { $0.lowerBound < $1.lowerBound }
        #expect(gets.count == 4)
        #expect(gets.allSatisfy { $0.count <= 64 * KiB })
        #expect(gets.first?.lowerBound == range.lowerBound && gets.last?.upperBound == range.upperBound)
        #expect(zip(gets, gets.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })  // no page twice
        #expect(remote.maxInFlight == 4)
        // The default splits at 8 MiB.
        let (defaults, defaultRemote) = try await Self.makeStore(pattern(20 * MiB))
        _ = try await defaults.read("obj", range: 0..<UInt64(17 * MiB))
        #expect(defaultRemote.ranges.count == 3 && defaultRemote.ranges.allSatisfy { $0.count <= 8 * MiB })
    }

    @Test func concurrentIdenticalReadsShareOneGET() async throws {
        let object = pattern(4 * MiB)
        let (store, remote) = try await Self.makeStore(object, delayMillis: 50)
        let range = UInt64(2 * MiB + 10)..<UInt64(2 * MiB + 10 * KiB)
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 { group.addTask { try await store.read("obj", range: range) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 16 && results.allSatisfy { $0 == Self.slice(object, range) })
        #expect(remote.ranges.count == 1)
        #expect(store.stats.snapshot().remoteRequests == 1)
    }

    @Test func overlappingReadsJoinTheGETInFlightForTheirSharedPages() async throws {
        let object = pattern(4 * MiB)
        let (store, remote) = try await Self.makeStore(object, delayMillis: 200, coalesceGapBytes: 0)
        let first = UInt64(0)..<UInt64(16 * KiB), second = UInt64(8 * KiB)..<UInt64(24 * KiB)  // pages 0-3, 2-5
        async let a = store.read("obj", range: first)
        while remote.ranges.isEmpty { try await Task.sleep(nanoseconds: 1_000_000) }
        let b = try await store.read("obj", range: second)
        #expect(try await a == Self.slice(object, first))
        #expect(b == Self.slice(object, second))
        // Pages 2-3 came once, with the first read's GET; the second GET asked only for pages 4-5.
        #expect(remote.ranges == [0..<UInt64(16 * KiB), UInt64(16 * KiB)..<UInt64(24 * KiB)])
    }

    @Test func wholeObjectReadsGoStraightToTheRemoteStore() async throws {
        let object = pattern(100_000)
        let (store, remote) = try await Self.makeStore(object)
        #expect(try await store.read("obj") == object)
        #expect(try await store.read("obj") == object)
        #expect(remote.ranges == [0..<UInt64.max, 0..<UInt64.max])
    }

    @Test func readsPastTheObjectsEndAreServedFromTheCachesToo() async throws {
        let dir = temporaryDirectory("end")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(10_000)
        let range = UInt64(5000)..<UInt64(30_000)
        do {
            let (store, remote) = try await Self.makeStore(object, diskDirectory: dir)
            #expect(try await store.read("obj", range: range) == Self.slice(object, range))
            #expect(try await store.read("obj", range: range) == Self.slice(object, range))
            #expect(try await store.read("obj", range: 20_000..<21_000) == [])
            #expect(remote.ranges.count == 1)
            await store.disk?.flush()
        }
        let (restarted, remote) = try await Self.makeStore(object, diskDirectory: dir)
        #expect(try await restarted.read("obj", range: range) == Self.slice(object, range))
        #expect(try await restarted.read("obj", range: 9000..<9500) == Self.slice(object, 9000..<9500))
        #expect(remote.ranges.isEmpty)
    }
}

@Suite struct SparseDiskTests {
    /// The block files in `dir`.
    static func blockFiles(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".vgc") }.map { dir + "/" + $0 }
    }

    @Test func aRestartedReaderFetchesOnlyThePagesItsDiskFilesLack() async throws {
        let dir = temporaryDirectory("sparse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(16 * MiB)
        let a = UInt64(5 * MiB + 100)..<UInt64(5 * MiB + 7000)  // pages 1280-1281
        let b = a.upperBound..<UInt64(5 * MiB + 20 * KiB)        // pages 1281-1284: new ones 1282-1284
        do {
            let (store, _) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
            _ = try await store.read("obj", range: a)
            await store.disk?.flush()
        }
        // The block's file holds two pages, not 4 MiB.
        let files = try Self.blockFiles(dir)
        #expect(files.count == 1)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: files[0])[.size] as? Int)
        #expect(size > 8192 && size < 16_384, "the block file has \(size) bytes")

        // Restarted: A again needs no GET.
        let (second, remote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        #expect(try await second.read("obj", range: a) == PageFetchTests.slice(object, a))
        #expect(remote.ranges.isEmpty)
        let s2 = second.stats.snapshot()
        #expect(s2.diskHits == 1 && s2.diskMisses == 0 && s2.diskBytes == 8192)

        // Restarted again, A∪B: the disk lookup finds A's pages, and only B's go remote.
        let (third, thirdRemote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        let both = a.lowerBound..<b.upperBound
        #expect(try await third.read("obj", range: both) == PageFetchTests.slice(object, both))
        #expect(thirdRemote.ranges == [UInt64(5 * MiB + 8 * KiB)..<UInt64(5 * MiB + 20 * KiB)])
        let s3 = third.stats.snapshot()
        #expect(s3.remoteRequests == 1 && s3.remoteBytes == 12 * KiB)
        #expect(s3.diskHits == 0 && s3.diskMisses == 1 && s3.diskBytes == 8192)  // a partial lookup
        await third.disk?.flush()

        // B's pages were merged into the same file: a fourth reader needs no GET.
        let (fourth, fourthRemote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        #expect(try await fourth.read("obj", range: both) == PageFetchTests.slice(object, both))
        #expect(fourthRemote.ranges.isEmpty)
        #expect(fourth.stats.snapshot().diskHits == 1)
        #expect(try Self.blockFiles(dir).count == 1)
    }

    @Test func aDamagedPageIsRefetchedNeverServed() async throws {
        let dir = temporaryDirectory("badpage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(8 * MiB)
        let range = UInt64(MiB)..<UInt64(MiB + 3 * 4096)
        do {
            let (store, _) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
            _ = try await store.read("obj", range: range)
            await store.disk?.flush()
        }
        // Flip one byte of the middle page's data (the pages are the file's last 12 KiB).
        let path = try #require(try Self.blockFiles(dir).first)
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 4096 - 100] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let (second, remote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        #expect(try await second.read("obj", range: range) == PageFetchTests.slice(object, range))
        #expect(remote.ranges == [range])
        let s = second.stats.snapshot()
        #expect(s.diskCorrupt == 1 && s.diskHits == 0 && s.diskMisses == 1)
        await second.disk?.flush()
        let (third, thirdRemote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        #expect(try await third.read("obj", range: range) == PageFetchTests.slice(object, range))
        #expect(thirdRemote.ranges.isEmpty && third.stats.snapshot().diskCorrupt == 0)
    }

    @Test func pagesQueuedSeparatelyMergeIntoOneFileAndTheEndIsKept() async throws {
        let dir = temporaryDirectory("merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = TierStats()
        let cache = try DiskCache(directory: dir, capacityBytes: 1 << 20, blockSize: 64 * KiB, stats: stats)
        let key = BlockKey(object: "o", index: 3)
        let block = pattern(50_000)  // the object ends 50 000 bytes into this block: page 12 is short
        cache.enqueue(key, firstPage: 2, Array(block[8192..<16_384]), endsObject: false)
        await cache.flush()
        cache.enqueue(key, firstPage: 11, Array(block[45_056...]), endsObject: true)
        cache.enqueue(key, firstPage: 0, Array(block[0..<4096]), endsObject: false)
        await cache.flush()
        #expect(try SparseDiskTests.blockFiles(dir).count == 1)
        let got = cache.get(key, pages: Array(0..<16))
        #expect(Set(got.keys) == [0, 2, 3, 11, 12, 13, 14, 15])
        for p in [0, 2, 3, 11, 12] {
            #expect(got[p] == Array(block[p * 4096..<min(p * 4096 + 4096, block.count)]), "page \(p)")
        }
        #expect([13, 14, 15].allSatisfy { got[$0] == [] })  // past the object's end
        #expect(cache.get(key, range: 45_100..<60_000) == Array(block[45_100...]))
        #expect(cache.get(key, range: 0..<8192) == nil)  // page 1 is absent
        let s = stats.snapshot()
        #expect(s.diskHits == 1 && s.diskMisses == 2 && s.diskCorrupt == 0)
    }

    /// Two caches on one directory stand for two processes merging pages into the files of the
    /// same blocks at once: pages may be lost (a later miss), but no file ever fails its checks
    /// and every page served is right.
    @Test func twoCachesMergingPagesOfOneBlockNeverWriteABadFile() async throws {
        let dir = temporaryDirectory("merge2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let blockSize = 64 * KiB, pages = 16
        let data = pattern(2 * blockSize)
        func page(_ block: Int, _ p: Int) -> [UInt8] {
            Array(data[(block * pages + p) * 4096..<(block * pages + p + 1) * 4096])
        }
        let a = try DiskCache(directory: dir, capacityBytes: 1 << 30, blockSize: blockSize)
        let b = try DiskCache(directory: dir, capacityBytes: 1 << 30, blockSize: blockSize)
        let wrong = await withTaskGroup(of: Int.self) { group in
            for (n, cache) in [a, b].enumerated() {
                group.addTask {
                    var wrong = 0
                    for round in 0..<300 {
                        let block = round % 2, p = (round * 7 + n * 5) % pages
                        cache.enqueue(BlockKey(object: "o", index: UInt64(block)), firstPage: p, page(block, p), endsObject: false)
                        if round % 3 == 0 { await cache.flush() }
                        let probe = (round / 2) % 2
                        for reader in [a, b] {
                            for (q, bytes) in reader.get(BlockKey(object: "o", index: UInt64(probe)), pages: Array(0..<pages))
                            where bytes != page(probe, q) { wrong += 1 }
                        }
                    }
                    await cache.flush()
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
        #expect(a.stats.snapshot().diskCorrupt == 0 && b.stats.snapshot().diskCorrupt == 0)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir)).contains { $0.hasPrefix(".tmp-") })
        // A third cache opened afterwards finds both files whole, every page it serves right.
        let stats = TierStats()
        let c = try DiskCache(directory: dir, capacityBytes: 1 << 30, blockSize: blockSize, stats: stats)
        var served = 0
        for block in 0..<2 {
            for (q, bytes) in c.get(BlockKey(object: "o", index: UInt64(block)), pages: Array(0..<pages)) {
                #expect(bytes == page(block, q))
                served += 1
            }
        }
        #expect(served > 0)
        #expect(stats.snapshot().diskCorrupt == 0)
    }
}

@Suite struct FetchPlanTests {
    @Test func adjacentAndNearPagesShareARequestAndLongRunsSplit() {
        let idle: (UInt64) -> Bool = { _ in false }
        // 1-3 adjacent, 6 two pages after, 10 three pages after: two requests with a gap of 2.
        #expect(FetchPlan.requests([1, 2, 3, 6, 10], gapPages: 2, maxPages: 100, busy: idle) == [1..<7, 10..<11])
        #expect(FetchPlan.requests([1, 2, 3, 6, 10], gapPages: 0, maxPages: 100, busy: idle) == [1..<4, 6..<7, 10..<11])
        // A gap page another read is fetching is not fetched again: the runs stay apart.
        #expect(FetchPlan.requests([1, 3], gapPages: 2, maxPages: 100, busy: { $0 == 2 }) == [1..<2, 3..<4])
        // 10 pages at most 4 per request: 4 + 3 + 3, in order, no page twice.
        #expect(FetchPlan.requests(Array(0..<10), gapPages: 0, maxPages: 4, busy: idle) == [0..<4, 4..<7, 7..<10])
        #expect(FetchPlan.split(0..<8, maxPages: 8) == [0..<8])
        #expect(FetchPlan.requests([], gapPages: 4, maxPages: 4, busy: idle).isEmpty)
    }
}

@Suite struct BlockFileTests {
    /// The bytes of a file holding page 0 (whole) and page 2 (100 bytes, the object's end) of a
    /// 4-page block, field by field as ``BlockFileHeader`` documents them.
    @Test func theLayoutIsTheDocumentedOne() throws {
        let g = BlockGeometry(pageSize: 4096, pagesPerBlock: 4)
        let key = BlockKey(object: "ob", index: 3)
        let p0 = [UInt8](repeating: 1, count: 4096), p2 = [UInt8](repeating: 2, count: 100)
        let file = BlockFile.encode(key, g, end: 2 * 4096 + 100, pages: [
            BlockPage(index: 0, bytes: p0, crc: BlockFile.crc(p0)), BlockPage(index: 2, bytes: p2, crc: BlockFile.crc(p2)),
        ])
        func u32(_ at: Int) -> UInt32 { file[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        #expect(Array(file[0..<8]) == Array("VGCBLK03".utf8))
        #expect(u32(8) == 2 && u32(12) == 4096 && u32(16) == 3 && u32(20) == 0 && u32(24) == 4 && u32(28) == 2)
        #expect(u32(32) == 8292)
        #expect(Array(file[36..<38]) == Array("ob".utf8))
        #expect(file[38] == 0b0101)                                     // pages 0 and 2
        #expect(u32(39) == BlockFile.crc(p0) && u32(43) == BlockFile.crc(p2))
        #expect(u32(47) == BlockFile.crc(Array(file[0..<47])))           // the header's own CRC
        #expect(Array(file[51...]) == p0 + p2)
        guard case .header(let h) = BlockFile.decodeHeader(file, key: key, g) else {
            Issue.record("the file does not decode")
            return
        }
        #expect(h.dataStart == 51 && h.end == 8292 && h.holds(0) && !h.holds(1) && h.holds(2) && h.rank(2) == 1)
        // Another object whose name hashes alike is not this one; a flipped header bit is damage.
        guard case .otherObject = BlockFile.decodeHeader(file, key: BlockKey(object: "ob", index: 4), g) else {
            Issue.record("another block index was accepted")
            return
        }
        var bad = file
        bad[38] ^= 0b1000
        guard case .damaged = BlockFile.decodeHeader(bad, key: key, g) else {
            Issue.record("a damaged bitmap was accepted")
            return
        }
    }
}
