import Foundation
import SegmentFormat
import Stores
import Synchronization
import Testing
import Vecgo
import _VecgoTestSupport

/// Writers and compaction hold at most `.maxSegmentBytes` of rows: more pending rows are written
/// out as segments as they come (searched, and published by the next commit, atomically), and
/// compaction writes outputs of at most that size.
@Suite struct BoundedMemoryTests {
    static let dim = 16
    /// 64 KiB of vectors per segment: 1 024 rows of dimension 16.
    static let limit = 64 << 10

    static func segmentObjects(_ store: any BlobStore) async throws -> [ObjectInfo] {
        try await store.list(prefix: "segment_")
    }

    @Test func aLargeCommitIsWrittenOutAsItGoesAndPublishedAtOnce() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit))
        let data = SegmentLayoutEngineTests.clustered(5_000, Self.dim, seed: 70)
        for (i, v) in data.enumerated() { try await w.upsert(id: UInt64(i), v) }
        // Rows written out already: segment objects exist, but no version publishes them.
        let spilled = try await Self.segmentObjects(store).count
        #expect(spilled >= 4, "\(spilled) segments written before the commit")
        #expect(await w.version == 0)
        #expect(try await store.list(prefix: "MANIFEST-").isEmpty)
        // Changes to written-out rows: an upsert replaces, a delete removes, both before the commit.
        let moved = data[4_999]
        try await w.upsert(id: 3, moved)
        try await w.delete(id: 10)
        #expect(await w.pendingCount == 5_000)  // 4 999 live rows and one delete
        let near = try await w.search(data[10], k: 3, options: SearchOptions(nprobe: 1000)).map(\.id)
        #expect(!near.contains(10))
        let at3 = try await w.search(moved, k: 2, options: SearchOptions(nprobe: 1000)).map(\.id)
        #expect(Set(at3) == [3, 4_999])
        #expect(try await w.search(data[3], k: 1, options: SearchOptions(nprobe: 1000)).first?.id != 3)
        try await w.commit()
        #expect(await w.version == 1)
        let manifests = try await store.list(prefix: "MANIFEST-")
        #expect(manifests.count == 1)
        // A reader sees exactly the final state, and every segment stays under the limit.
        let r = try await Vecgo.open(.remote(store), .readOnly)
        for (i, v) in data.enumerated() where i % 97 == 0 && i != 10 && i != 3 {
            #expect(try await r.search(v, k: 1, options: SearchOptions(nprobe: 1000)).first?.id == UInt64(i))
        }
        #expect(try await r.search(data[10], k: 1, options: SearchOptions(nprobe: 1000)).first?.id != 10)
        let m = try Manifest.decode(try await store.read(manifests[0].name), object: manifests[0].name)
        #expect(m.segments.count >= 5)
        #expect(m.segments.reduce(0) { $0 + $1.rowCount } - m.segments.reduce(0) { $0 + ($1.deadRows ?? 0) } == 4_999)
        #expect(m.segments.allSatisfy { $0.rowCount * UInt64(Self.dim) * 4 <= UInt64(Self.limit) })
    }

    @Test func writtenOutRowsSurviveAFailedCommitAndDiscardDropsThem() async throws {
        let failNext = Mutex(true)
        let store = InterceptingStore(onWrite: { name, kind in
            if kind == .putIfAbsent, name.hasPrefix("MANIFEST-"), failNext.withLock({ f in defer { f = false }; return f }) {
                throw StoreError(.network, "injected: the commit's manifest put fails once")
            }
        })
        // One attempt: a commit puts a manifest that did not land again, so only then does it fail.
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit),
                                     .commitAttempts(1))
        let data = SegmentLayoutEngineTests.clustered(3_000, Self.dim, seed: 71)
        for (i, v) in data.enumerated() { try await w.upsert(id: UInt64(i), v) }
        await #expect(throws: VecgoError.self) { try await w.commit() }
        #expect(await w.pendingCount == 3_000)
        try await w.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        for (i, v) in data.enumerated() where i % 101 == 0 {
            #expect(try await r.search(v, k: 1, options: SearchOptions(nprobe: 1000)).first?.id == UInt64(i))
        }
        // Pending spills go with discardPending; the next commit publishes nothing of them.
        for (i, v) in data.enumerated() { try await w.upsert(id: UInt64(10_000 + i), v) }
        #expect(await w.pendingCount == 3_000)
        #expect(try await w.discardPending() == 3_000)
        #expect(try await w.commit() == 1)
    }

    @Test func compactionWritesOutputsOfAtMostTheLimit() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit),
                                     .ivfThreshold(500))
        let data = SegmentLayoutEngineTests.clustered(3_000, Self.dim, seed: 72)
        for (i, v) in data.enumerated() {
            try await w.upsert(id: UInt64(i), v)
            if i % 300 == 299 { try await w.commit() }
        }
        try await w.delete(id: 5)
        try await w.commit()
        let report = try await w.compact(maxRows: Int.max)
        #expect(report.segmentsMerged == 10)
        #expect(report.rowsKept == 2_999)
        #expect(report.rowsDropped == 1)
        let name = try #require(try await store.list(prefix: "MANIFEST-").last?.name)
        let m = try Manifest.decode(try await store.read(name), object: name)
        #expect(m.segments.count == 3)  // 2 999 rows of 64 B in segments of at most 1 024 rows
        #expect(m.segments.allSatisfy { $0.rowCount * UInt64(Self.dim) * 4 <= UInt64(Self.limit) && $0.deadRows == 0 })
        let r = try await Vecgo.open(.remote(store), .readOnly)
        for (i, v) in data.enumerated() where i % 89 == 0 && i != 5 {
            #expect(try await r.search(v, k: 1, options: SearchOptions(nprobe: 1000)).first?.id == UInt64(i))
        }
        #expect(try await r.search(data[5], k: 1, options: SearchOptions(nprobe: 1000)).first?.id != 5)
    }

    /// A failed spill fails no write: the rows stay pending (the commit writes them), and only
    /// past twice the limit are writes refused until a commit.
    @Test func aFailedSpillKeepsTheRowsAndBoundsPendingWrites() async throws {
        let failSegments = Mutex(true)
        let store = InterceptingStore(onWrite: { name, kind in
            if kind == .put, name.hasPrefix("segment_"), failSegments.withLock({ $0 }) {
                throw StoreError(.network, "injected: segment uploads fail")
            }
        })
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit))
        let data = SegmentLayoutEngineTests.clustered(2_100, Self.dim, seed: 73)
        for i in 0..<2_047 { try await w.upsert(id: UInt64(i), data[i]) }  // 1 024 rows crossed the limit: the spill failed
        #expect(await w.pendingCount == 2_047)
        #expect(try await store.list(prefix: "segment_").isEmpty)
        try await w.upsert(id: 2_047, data[2_047])  // 2 048 rows: twice the limit
        await #expect(throws: VecgoError.self) { try await w.upsert(id: 2_048, data[2_048]) }
        failSegments.withLock { $0 = false }
        try await w.commit()
        #expect(await w.pendingCount == 0)
        try await w.upsert(id: 2_048, data[2_048])  // accepted again
        try await w.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        for i in stride(from: 0, through: 2_048, by: 127) {
            #expect(try await r.search(data[i], k: 1, options: SearchOptions(nprobe: 1000)).first?.id == UInt64(i))
        }
    }

    /// `discardPending()` while pending rows are being written out: the segment being written
    /// is dropped when it is done, so the next commit publishes none of the discarded rows.
    @Test func discardingDuringASpillDropsTheSpilledRows() async throws {
        let slowSegments = Mutex(false)
        let store = InterceptingStore(onWrite: { name, kind in
            if kind == .put, name.hasPrefix("segment_"), slowSegments.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.5) }
        })
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit))
        let data = SegmentLayoutEngineTests.clustered(1_100, Self.dim, seed: 74)
        for i in 0..<1_023 { try await w.upsert(id: UInt64(i), data[i]) }
        slowSegments.withLock { $0 = true }
        let crossing = Task { try await w.upsert(id: 1_023, data[1_023]) }  // 1 024 rows: the spill starts (slow upload)
        try await Task.sleep(nanoseconds: 150_000_000)
        #expect(try await w.discardPending() == 1_024)
        try await crossing.value
        slowSegments.withLock { $0 = false }
        #expect(await w.pendingCount == 0)
        #expect(try await w.commit() == 0)
        #expect(try await store.list(prefix: "MANIFEST-").isEmpty)
    }

    /// This handle's vacuum keeps the segments its pending rows were written out to.
    @Test func vacuumKeepsThisHandlesPendingSpills() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .maxSegmentBytes(Self.limit),
                                     .maxCommitObjectAge(0.05))
        let data = SegmentLayoutEngineTests.clustered(1_500, Self.dim, seed: 75)
        try await w.upsert(id: 99_999, data[0])
        try await w.commit()
        for i in 0..<1_500 { try await w.upsert(id: UInt64(i), data[i]) }  // one spill, unreferenced by any manifest
        try await Task.sleep(nanoseconds: 200_000_000)
        _ = try await w.vacuum(retainVersions: 1, gracePeriod: 0.1)
        try await w.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly)
        for i in stride(from: 0, to: 1_500, by: 149) {
            #expect(try await r.search(data[i], k: 1, options: SearchOptions(nprobe: 1000)).first?.id == UInt64(i))
        }
    }
}
