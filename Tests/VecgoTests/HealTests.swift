// Healing from bad bytes in the caches (issue 15, part 1): a read whose bytes fail their check is
// dropped from every tier and read once more from the store; and the disk cache's local faults
// (issue 15, part 7): a full, read-only or vanished cache directory never fails a query.
import Foundation
import Stores
import Synchronization
import Testing
@_spi(Testing) @testable import Tiering
@testable import Vecgo
import _VecgoTestSupport

/// Flips one byte of the GET responses of objects whose names start with `prefix`: the byte at
/// `offset(size)` of the object, in the first response holding it (or in every one, `persistent`).
final class ByteFlipper: Sendable {
    let prefix: String
    let persistent: Bool
    let sizes: [String: UInt64]
    let offset: @Sendable (UInt64) -> UInt64
    private let state = Mutex<(flipped: Set<String>, count: Int)>(([], 0))

    init(_ store: MemoryBlobStore, prefix: String, persistent: Bool = false,
         offset: @escaping @Sendable (UInt64) -> UInt64) async throws {
        self.prefix = prefix
        self.persistent = persistent
        self.offset = offset
        var sizes: [String: UInt64] = [:]
        for o in try await store.list(prefix: prefix) { sizes[o.name] = o.size }
        self.sizes = sizes
    }

    /// How many responses were damaged.
    var count: Int { state.withLock { $0.count } }

    func apply(_ name: String, _ range: Range<UInt64>, _ body: [UInt8]) -> [UInt8] {
        guard name.hasPrefix(prefix), let size = sizes[name] else { return body }
        let at = offset(size)
        guard at >= range.lowerBound, at - range.lowerBound < UInt64(body.count) else { return body }
        let go = state.withLock { s -> Bool in
            guard persistent || s.flipped.insert(name).inserted else { return false }
            s.count += 1
            return true
        }
        guard go else { return body }
        var out = body
        out[Int(at - range.lowerBound)] ^= 0x5A
        return out
    }
}

@Suite struct HealTests {
    static let dim = 16

    /// A database of one segment (IVF with codes, or a small flat/graph one) and a second
    /// commit deleting 50 rows, so a reader needs the pk-index for its live rows.
    static func database(ivf: Bool) async throws -> MemoryBlobStore {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: dim, metric: .l2), .ivfThreshold(ivf ? 1000 : 100_000))
        var ids: [UInt64] = []
        for v in SegmentLayoutEngineTests.clustered(ivf ? 3000 : 600, dim, seed: 91) { ids.append(try await w.insert(v)) }
        try await w.commit()
        for id in ids.prefix(50) { try await w.delete(id: id) }
        try await w.close()
        return store
    }

    static let queries = SegmentLayoutEngineTests.clustered(5, dim, seed: 92)

    static func answers(_ db: Vecgo) async throws -> [[SearchResult]] {
        var out: [[SearchResult]] = []
        for q in queries { out.append(try await db.search(q, k: 10, include: [.vector])) }
        return out
    }

    static func reference(_ store: MemoryBlobStore) async throws -> [[SearchResult]] {
        let r = try await Vecgo.open(.remote(store), .readOnly)
        defer { Task { try? await r.close() } }
        return try await answers(r)
    }

    static func tempDir(_ label: String) -> String {
        FileManager.default.temporaryDirectory.path + "/vecgo-heal-\(label)-\(UUID().uuidString)"
    }

    /// Every page the disk cache in `dir` holds of the store's objects, compared with the
    /// store's bytes: the number of pages compared and of those that differ.
    static func diskPages(_ dir: String, _ store: MemoryBlobStore) async throws -> (pages: Int, damaged: Int) {
        let disk = try DiskCache(directory: dir, capacityBytes: 1 << 30)
        var pages = 0, damaged = 0
        for o in try await store.list(prefix: "") where o.size > 0 {
            let truth = try await store.read(o.name)
            for unit in 0...(o.size - 1) / UInt64(disk.blockSize) {
                let got = disk.get(BlockKey(object: o.name, index: unit), pages: Array(0..<disk.blockSize / disk.pageSize))
                for (p, bytes) in got where !bytes.isEmpty {
                    let start = Int(unit) * disk.blockSize + p * disk.pageSize
                    pages += 1
                    if start + bytes.count > truth.count || !truth[start..<start + bytes.count].elementsEqual(bytes) { damaged += 1 }
                }
            }
        }
        return (pages, damaged)
    }

    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var prefix: String
        var ivf: Bool
        var offset: @Sendable (UInt64) -> UInt64
    }

    static let cases: [Case] = [
        Case(description: "segment tail (IVF)", prefix: "segment_", ivf: true, offset: { $0 - 8 }),
        Case(description: "segment data (small segment)", prefix: "segment_", ivf: false, offset: { $0 / 3 }),
        Case(description: "manifest", prefix: "MANIFEST-", ivf: false, offset: { $0 / 2 }),
        Case(description: "pk-index", prefix: "pkindex_", ivf: false, offset: { $0 / 2 }),
    ]

    /// One byte damaged in transit in the first GET of an object: the query heals (drops the
    /// bytes from every tier, reads them again) and answers as on an undamaged store; the disk
    /// cache then holds no damaged page, and a new handle on it answers too.
    @Test(arguments: cases)
    func aByteDamagedInTransitIsHealed(_ c: Case) async throws {
        let memory = try await Self.database(ivf: c.ivf)
        let expected = try await Self.reference(memory)
        let flipper = try await ByteFlipper(memory, prefix: c.prefix, offset: c.offset)
        let store = InterceptingStore(memory, afterRead: { flipper.apply($0, $1, $2) })
        let dir = Self.tempDir("transit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(dir))
        #expect(try await Self.answers(first) == expected)
        #expect(flipper.count >= 1, "no byte of \(c.prefix)* was damaged: the test proves nothing")
        #expect(await first.tierCounters().healed >= 1)
        try await first.close()
        let disk = try await Self.diskPages(dir, memory)
        #expect(disk.pages > 0)
        #expect(disk.damaged == 0, "\(disk.damaged) of \(disk.pages) cached pages differ from the store")
        let second = try await Vecgo.open(.remote(memory), .readOnly, .cacheDirectory(dir))
        #expect(try await Self.answers(second) == expected)
        #expect(await second.tierCounters().healed == 0)
        try await second.close()
    }

    /// Damage that persists in the store is reported as `.corrupted`, naming the object and the offset.
    @Test func damageInTheStoreItselfIsReportedWithObjectAndOffset() async throws {
        let memory = try await Self.database(ivf: true)
        let flipper = try await ByteFlipper(memory, prefix: "segment_", persistent: true, offset: { $0 - 8 })
        let store = InterceptingStore(memory, afterRead: { flipper.apply($0, $1, $2) })
        let segment = try #require(flipper.sizes.keys.first)
        let r = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(Self.tempDir("persistent")))
        do {
            _ = try await r.search(Self.queries[0], k: 10)
            Issue.record("a segment damaged in the store was searched without an error")
        } catch let e as VecgoError {
            #expect(e.code == .corrupted)
            #expect("\(e)".contains(segment), "\(e)")
            #expect("\(e)".contains("offset"), "\(e)")
        }
        // Each attempt (the background prefetch of the tail, the search) reads through the
        // caches, then once from the store: never more.
        #expect(flipper.count >= 2 && flipper.count % 2 == 0, "\(flipper.count) damaged reads")
        try await r.close()
    }

    /// A page damaged inside a disk block file whose page CRC was recomputed to match: the disk
    /// cache serves it, the segment's own checksum catches it, the block is dropped and read again.
    @Test func damageInADiskBlockFileWithAMatchingPageCRCIsHealed() async throws {
        let memory = try await Self.database(ivf: true)
        let expected = try await Self.reference(memory)
        let dir = Self.tempDir("diskfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await Vecgo.open(.remote(memory), .readOnly, .cacheDirectory(dir))
        _ = try await Self.answers(first)
        try await first.close()
        // Damage the page holding the segment's last bytes (its footer), with a matching page CRC.
        let seg = try #require(try await memory.list(prefix: "segment_").first)
        let g = BlockGeometry(pageSize: 4096, pagesPerBlock: (4 << 20) / 4096)
        let at = seg.size - 8
        let key = BlockKey(object: seg.name, index: at / UInt64(g.blockSize))
        let path = dir + "/" + DiskCache.fileName(key)
        var (pages, end) = try #require(DiskCache.readAllPages(path: path, key: key, g))
        let page = Int(at % UInt64(g.blockSize)) / g.pageSize
        let i = try #require(pages.firstIndex { $0.index == page })
        pages[i].bytes[Int(at % UInt64(g.pageSize))] ^= 0x5A
        pages[i].crc = BlockFile.crc(pages[i].bytes)
        try Data(BlockFile.encode(key, g, end: end, pages: pages)).write(to: URL(fileURLWithPath: path))
        #expect(try await Self.diskPages(dir, memory).damaged == 1)

        let second = try await Vecgo.open(.remote(memory), .readOnly, .cacheDirectory(dir))
        #expect(try await Self.answers(second) == expected)
        #expect(await second.tierCounters().healed >= 1)
        try await second.close()
        let disk = try await Self.diskPages(dir, memory)
        #expect(disk.pages > 0 && disk.damaged == 0, "\(disk)")
    }
}

/// The disk cache's local faults: queries keep answering from the store, one warning per condition.
/// Reads that go straight to the store (compaction, `verify`) read once more when a check fails:
/// a byte damaged on the way is not damage in the store (seen in the torture suite: compactions
/// failing `.corrupted` under flipped GET bodies).
@Suite struct UncachedReadTests {
    @Test func compactionAndVerifyReadAgainWhenABodyWasDamagedOnTheWay() async throws {
        let memory = try await HealTests.database(ivf: false)
        let segments = try await ByteFlipper(memory, prefix: "segment_", offset: { $0 / 3 })
        let report = try await Vecgo.verify(InterceptingStore(memory, afterRead: { segments.apply($0, $1, $2) }))
        #expect(report.ok, "\(report.problems)")
        #expect(segments.count >= 1, "no segment byte was damaged: the test proves nothing")

        let again = try await ByteFlipper(memory, prefix: "segment_", offset: { $0 / 3 })
        let writer = try await Vecgo.open(.remote(InterceptingStore(memory, afterRead: { again.apply($0, $1, $2) })))
        let compacted = try await writer.compact()
        try await writer.close()
        #expect(compacted.version != nil && compacted.rowsDropped == 50)
        #expect(again.count >= 1, "compaction read no damaged byte: the test proves nothing")
        #expect(try await Vecgo.verify(memory).ok)
    }

    @Test func damageThatStaysInTheStoreIsStillReported() async throws {
        let memory = try await HealTests.database(ivf: false)
        let always = try await ByteFlipper(memory, prefix: "segment_", persistent: true, offset: { $0 / 3 })
        let report = try await Vecgo.verify(InterceptingStore(memory, afterRead: { always.apply($0, $1, $2) }))
        #expect(!report.ok)
        #expect(report.problems.contains { $0.object.hasPrefix("segment_") })
    }
}

@Suite struct DiskCacheFaultTests {
    /// A reader that keeps nothing in RAM or decoded, so every query reads through the disk tier.
    static func reader(_ store: MemoryBlobStore, _ dir: String, _ log: LogCapture) async throws -> Vecgo {
        try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(dir), .blockCacheSize(0), .decodedCacheSize(0),
                             .logger(log.logger))
    }

    static func queryTwice(_ r: Vecgo, _ expected: [[SearchResult]]) async throws {
        for _ in 0..<2 {
            #expect(try await HealTests.answers(r) == expected)
            await r.cached.disk?.flush()
        }
    }

    static func temporaryFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(".tmp-") }
    }

    /// The cache directory deleted under a running reader: created again, logged once.
    @Test func aDeletedDirectoryIsCreatedAgain() async throws {
        let memory = try await HealTests.database(ivf: false)
        let expected = try await HealTests.reference(memory)
        let dir = HealTests.tempDir("deleted"), log = LogCapture()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await Self.reader(memory, dir, log)
        try await Self.queryTwice(r, expected)
        for _ in 0..<2 {
            try FileManager.default.removeItem(atPath: dir)
            try await Self.queryTwice(r, expected)
        }
        #expect(log.warnings(containing: "vanished").count == 1, "\(log.all.map(\.message))")
        #expect(FileManager.default.fileExists(atPath: dir))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.hasSuffix(".vgc") })
        #expect(Self.temporaryFiles(dir).isEmpty)
        try await r.close()
    }

    /// The cache directory replaced by a regular file (not writable, not creatable): RAM-only, logged once.
    @Test func aDirectoryThatCannotBeUsedLeavesTheReaderRAMOnly() async throws {
        let memory = try await HealTests.database(ivf: false)
        let expected = try await HealTests.reference(memory)
        let dir = HealTests.tempDir("notadir"), log = LogCapture()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await Self.reader(memory, dir, log)
        try await Self.queryTwice(r, expected)
        try FileManager.default.removeItem(atPath: dir)
        #expect(FileManager.default.createFile(atPath: dir, contents: Data("not a directory".utf8)))
        try await Self.queryTwice(r, expected)
        try await Self.queryTwice(r, expected)
        #expect(log.warnings(containing: "RAM only").count == 1, "\(log.all.map(\.message))")
        #expect(await r.cached.disk?.isRAMOnly == true)
        let parent = (dir as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".tmp-") }.isEmpty)
        try await r.close()
    }

    /// Writes failing with a full disk or a read-only file system: queries answer, one warning,
    /// no temporary file left.
    @Test(arguments: [(ENOSPC, "disk is full"), (EROFS, "not writable")])
    func failedWritesAreDroppedAndLoggedOnce(_ code: Int32, _ text: String) async throws {
        let memory = try await HealTests.database(ivf: true)
        let expected = try await HealTests.reference(memory)
        let dir = HealTests.tempDir("full"), log = LogCapture()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await Self.reader(memory, dir, log)
        await r.cached.disk?.flush()  // the open's reads (manifest, pk-index) are cached before the fault
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        await r.cached.disk?.injectWriteFailure(code)
        try await Self.queryTwice(r, expected)
        try await Self.queryTwice(r, expected)
        #expect(log.warnings(containing: text).count == 1, "\(log.all.map(\.message))")
        #expect(log.all.count == 1, "\(log.all.map(\.message))")
        #expect(Self.temporaryFiles(dir).isEmpty)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == before)
        try await r.close()
    }
}
