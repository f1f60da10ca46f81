import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// Compaction and vacuum: storage is reclaimed without losing a row or breaking a reader.
@Suite struct MaintenanceTests {
    /// Every live key's fields, as a reader sees them.
    static func contents(_ db: Vecgo, dimension: Int = 4) async throws -> [UInt64: SearchResult] {
        let all = try await db.search(Array(repeating: 0, count: dimension), k: 10_000, include: .all)
        var out: [UInt64: SearchResult] = [:]
        for r in all {
            #expect(out[r.id] == nil, "key \(r.id) returned twice")
            var plain = r
            plain.distance = 0
            out[r.id] = plain
        }
        return out
    }

    static func vector(_ i: Int, _ salt: Float = 0) -> [Float] { [Float(i), Float(i % 7), salt, 1] }

    /// Five small commits with upserts and deletes in between.
    static func fragmented() async throws -> (MemoryBlobStore, Vecgo) {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2), .maxCommitObjectAge(0.01))
        for c in 0..<5 {
            for i in 0..<100 {
                let key = UInt64(c * 100 + i)
                try await w.upsert(id: key, vector(Int(key)), metadata: ["c": .int(Int64(c))], payload: [UInt8(c)])
            }
            if c > 0 {
                for i in stride(from: 0, to: 100, by: 10) { try await w.delete(id: UInt64((c - 1) * 100 + i)) }
                for i in stride(from: 5, to: 100, by: 10) {
                    try await w.upsert(id: UInt64((c - 1) * 100 + i), vector((c - 1) * 100 + i, 9), metadata: ["moved": .bool(true)])
                }
            }
            try await w.commit()
        }
        return (store, w)
    }

    /// A writer idle while others commit and vacuum removes the versions after its own must
    /// not re-create one of them (its create-if-absent would succeed on a vacuumed name, and
    /// the acknowledged commit would be invisible): it confirms its base before committing.
    @Test func anIdleWriterNeverCommitsOntoAVacuumedVersionNumber() async throws {
        let store = MemoryBlobStore()
        let idle = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2), .maxCommitObjectAge(0.05))
        try await idle.upsert(id: 1, Self.vector(1))
        try await idle.commit()  // version 1
        let busy = try await Vecgo.open(.remote(store), .maxCommitObjectAge(0.05))
        for i in 2...4 {
            try await Task.sleep(nanoseconds: 120_000_000)
            try await busy.upsert(id: UInt64(i), Self.vector(i))
            try await busy.commit()  // versions 2, 3, 4
        }
        let report = try await busy.vacuum(retainVersions: 1, gracePeriod: 0.1)
        #expect(report.manifestsDeleted == 3, "the test needs versions 1-3 vacuumed: \(report)")
        try await idle.upsert(id: 100, Self.vector(100))
        let acknowledged = try await idle.commit()
        #expect(acknowledged == 5, "the idle writer committed version \(acknowledged), a number vacuum had freed")
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await Self.contents(reader).keys.sorted() == [1, 2, 3, 4, 100])
        try await busy.close()
        try await idle.close()
    }

    /// Vacuum deletes only a prefix of the versions: past one too young to delete it keeps
    /// the rest, so the versions left stay contiguous even when times disagree with order.
    @Test func vacuumNeverLeavesAGapInTheVersions() async throws {
        // Version 2 is reported as just written, whatever its real time (a store whose nodes'
        // clocks disagree).
        let store = InterceptingStore(onList: { listing in
            listing.map { o in
                var o = o
                if o.name == "MANIFEST-00000000000000000002.bin" { o.lastModified = Date() }
                return o
            }
        })
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2), .maxCommitObjectAge(0.01))
        for i in 1...4 {
            try await w.upsert(id: UInt64(i), Self.vector(i))
            try await w.commit()  // versions 1...4
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        let report = try await w.vacuum(retainVersions: 1, gracePeriod: 0.02)
        #expect(report.manifestsDeleted == 1, "\(report)")
        let left = try await store.base.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
        #expect(left == [2, 3, 4])
        #expect(try await Vecgo.verify(store).ok)
        try await w.close()
    }

    /// Compaction lays out what it copies by its size: IVF (without building a graph first)
    /// or a graph; every live row survives either way.
    @Test(arguments: [(600, 300, "ivf"), (2_400, 50_000, "graph")])
    func compactionBuildsTheLayoutItsRowCountCalls(rows: Int, ivfThreshold: Int, expected: String) async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2), .ivfThreshold(ivfThreshold))
        let per = rows / 3
        for c in 0..<3 {
            for i in 0..<per { try await w.upsert(id: UInt64(c * per + i), Self.vector(c * per + i)) }
            try await w.commit()
        }
        try await w.delete(id: 0)
        try await w.commit()
        let report = try await w.compact(maxRows: rows)
        #expect(report.segmentsMerged == 3 && report.rowsKept == rows - 1)
        let name = try #require(try await store.list(prefix: "segment_").map(\.name).first { $0.contains("-c") })
        let merged = try SegmentFormat.SegmentCodec.decode(try await store.read(name), object: name)
        #expect(expected == "ivf" ? merged.ivf != nil : merged.graph != nil, "\(name) is not laid out as \(expected)")
        let all = try await Self.contents(w)
        #expect(all.count == rows - 1 && all[0] == nil && all[UInt64(rows - 1)]?.vector == Self.vector(rows - 1))
        try await w.close()
    }

    @Test func compactionKeepsEveryLiveRowAndDropsTheRest() async throws {
        let (store, w) = try await Self.fragmented()
        let before = try await Self.contents(w)
        #expect(await w.segmentNames.count == 5)
        let report = try await w.compact()
        #expect(report.segmentsMerged == 5)
        #expect(report.rowsKept == before.count)
        #expect(report.rowsDropped > 0)
        #expect(await w.segmentNames.count == 1)
        #expect(try await Self.contents(w) == before)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await Self.contents(reader) == before)
        // Upserts and deletes keep working on compacted rows.
        try await w.upsert(id: 15, Self.vector(15, 3))
        try await w.delete(id: 16)
        try await w.commit()
        let after = try await Self.contents(w)
        #expect(after[15]?.vector == Self.vector(15, 3) && after[16] == nil && after.count == before.count - 1)
        #expect(try await w.compact().segmentsMerged == 2)
        #expect(try await Self.contents(w) == after)
        let nothing = try await w.compact()
        #expect(nothing.version == nil)
        #expect(try await Vecgo.verify(store).ok)
    }

    @Test func writesRacingACompactionAreNeverLost() async throws {
        for round in 0..<3 {
            let (store, w) = try await Self.fragmented()
            let other = try await Vecgo.open(.remote(store))
            async let compaction = w.compact()
            // Meanwhile another writer changes keys living in the segments being merged.
            for i in 0..<20 {
                try await other.upsert(id: UInt64(i * 7 + 1), Self.vector(i, 42), metadata: ["round": .int(Int64(round))])
                if i % 5 == 4 { try await other.commit() }
            }
            try await other.delete(id: 2)
            try await other.commit()
            do {
                _ = try await compaction
            } catch let e as VecgoError where e.code == .conflict {
                // Allowed: the compaction gave up; nothing changed.
            }
            let final = try await Self.contents(try await Vecgo.open(.remote(store), .readOnly))
            for i in 0..<20 {
                #expect(final[UInt64(i * 7 + 1)]?.vector == Self.vector(i, 42), "round \(round) key \(i * 7 + 1)")
            }
            #expect(final[2] == nil)
            #expect(try await Vecgo.verify(store).ok)
        }
    }

    @Test func vacuumReclaimsOnlyWhatNoRetainedVersionNeeds() async throws {
        let (store, w) = try await Self.fragmented()
        try await w.compact()
        let newest = await w.version
        let reader = try await Vecgo.open(.remote(store), .atVersion(newest - 1))
        let readerBefore = try await Self.contents(reader)
        // Within the grace period nothing goes.
        let cautious = try await w.vacuum(retainVersions: 2, gracePeriod: 3600)
        #expect(cautious.manifestsDeleted == 0 && cautious.objectsDeleted == 0 && cautious.keptInGracePeriod > 0)
        let tooShort = await #expect(throws: VecgoError.self) { try await w.vacuum(retainVersions: 2, gracePeriod: 0.001) }
        #expect(tooShort?.code == .invalidArgument, "a grace period under maxCommitObjectAge must be refused")
        try await Task.sleep(nanoseconds: 50_000_000)
        let before = try await store.list(prefix: "")
        let report = try await w.vacuum(retainVersions: 2, gracePeriod: 0.02)
        #expect(report.oldestRetainedVersion == newest - 1)
        #expect(report.manifestsDeleted == Int(newest) - 2)
        #expect(report.objectsDeleted > 0)
        let after = try await store.list(prefix: "")
        #expect(after.count == before.count - report.manifestsDeleted - report.objectsDeleted)
        // Retained versions, and a reader that had one open, still answer the same.
        #expect(try await Self.contents(reader) == readerBefore)
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .atVersion(newest - 1))) == readerBefore)
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly)) == (try await Self.contents(w)))
        let gone = await #expect(throws: VecgoError.self) { try await Vecgo.open(.remote(store), .atVersion(1)) }
        #expect(gone?.code == .notFound)
        #expect(try await Vecgo.verify(store).ok)
        // The writer goes on committing new versions after its history was trimmed.
        try await w.upsert(id: 1_000, Self.vector(1_000))
        #expect(try await w.commit() == newest + 1)
        let invalid = await #expect(throws: VecgoError.self) { try await w.vacuum(retainVersions: 0) }
        #expect(invalid?.code == .invalidArgument)
    }

    /// A commit that waited longer than maxCommitObjectAge re-writes its segment under a new
    /// name before publishing, so a vacuum that judged the first copy old cannot break it.
    @Test func aSlowCommitPublishesAFreshCopyOfItsSegment() async throws {
        let store = MemoryBlobStore()
        let slow = RoundTripRecorder(store, delayMillis: 5)
        let w = try await Vecgo.open(.remote(slow), .create(dimension: 4, metric: .l2), .maxCommitObjectAge(0.001))  // 5 ms per request: always stale
        try await w.upsert(id: 1, Self.vector(1))
        try await w.commit()
        let segments = try await store.list(prefix: "segment_").map(\.name)
        #expect(segments.count == 2, "\(segments)")
        let published = await w.segmentNames
        #expect(published.count == 1)
        let orphan = try #require(segments.first { !published.contains($0) })
        try await Task.sleep(nanoseconds: 20_000_000)
        let report = try await w.vacuum(gracePeriod: 0.01)
        #expect(report.objectsDeleted == 1)
        #expect(try await store.list(prefix: "segment_").map(\.name) == published)
        #expect(!(try await store.list(prefix: "").map(\.name).contains(orphan)))
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly))[1]?.vector == Self.vector(1))
    }

    /// A row that a compaction only moved is not a change: a writer with a pending upsert of
    /// it commits after another handle compacted. A real change is a conflict, and
    /// discardPending() is the way out.
    @Test func compactionMovesAreNotConflictsAndDiscardEndsRealOnes() async throws {
        let (store, w) = try await Self.fragmented()
        try await w.upsert(id: 150, Self.vector(150, 7))
        let other = try await Vecgo.open(.remote(store), .maxCommitObjectAge(0.01))
        #expect(try await other.compact().segmentsMerged == 5)
        try await w.commit()
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly))[150]?.vector == Self.vector(150, 7))
        // Now a real conflict on key 151.
        try await w.upsert(id: 151, Self.vector(151, 1))
        try await other.refresh()
        try await other.upsert(id: 151, Self.vector(151, 2))
        try await other.commit()
        let conflict = await #expect(throws: VecgoError.self) { try await w.commit() }
        #expect(conflict?.code == .conflict)
        #expect(try await w.discardPending() == 1)
        try await w.refresh()
        try await w.upsert(id: 151, Self.vector(151, 3))
        try await w.commit()
        #expect(try await Self.contents(w)[151]?.vector == Self.vector(151, 3))
    }
}
