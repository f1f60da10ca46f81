import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// Manifests record each segment's dead rows, so readers of data never updated or deleted
/// skip the pk-index; `verify` checks the counts against the pk-index.
@Suite struct LiveRowHintTests {
    /// A store that counts reads of pk-index objects in `reads`.
    static func countingPKReads() -> (InterceptingStore, reads: Locked<Int>) {
        let reads = Locked(0)
        return (InterceptingStore(onRead: { name in if name.hasPrefix("pkindex_") { reads.withLock { $0 += 1 } } }), reads)
    }

    @Test func readersOfAppendOnlyDataNeverReadThePKIndex() async throws {
        let (store, reads) = Self.countingPKReads()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for c in 0..<2 {
            for i in 0..<50 { try await w.upsert(id: UInt64(c * 100 + i), [Float(i), Float(c)]) }
            try await w.commit()
        }
        try await w.close()  // a writer reads the pk-index of its views (it needs it to rebase)
        reads.withLock { $0 = 0 }
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await reader.search([0, 0], k: 1_000).count == 100)
        try await reader.close()
        #expect(reads.withLock { $0 } == 0, "a reader of append-only data read the pk-index")

        // An upsert leaves a dead row: now the pk-index decides, and the old row is hidden.
        let w2 = try await Vecgo.open(.remote(store))
        try await w2.upsert(id: 5, [500, 500])
        try await w2.commit()
        try await w2.close()
        let manifest = try Manifest.decode(try await store.base.read(Manifest.objectName(version: await w2.version)), object: "m")
        #expect(manifest.segments.map(\.deadRows) == [1, 0, 0])
        let after = try await Vecgo.open(.remote(store), .readOnly)
        let hits = try await after.search([5, 0], k: 1_000, include: .vector)
        #expect(hits.count == 100 && hits.first { $0.id == 5 }?.vector == [500, 500])
        #expect(reads.withLock { $0 } > 0)
        #expect(try await Vecgo.verify(store).ok)
    }

    /// Results with metadata, payloads or vectors come from the segment row the search found,
    /// so a reader that never read its version's pk-index still answers after vacuum removed it.
    @Test func includeNeedsNoPKIndexEvenAfterVacuumRemovedIt() async throws {
        let (store, reads) = Self.countingPKReads()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .maxCommitObjectAge(0.02))
        for i in 0..<20 { try await w.upsert(id: UInt64(i), [Float(i), 0], metadata: ["n": .int(Int64(i))], payload: [UInt8(i)]) }
        try await w.commit()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        try await Task.sleep(nanoseconds: 100_000_000)
        // More new keys than half the first version's: this commit writes a full key index, not
        // a delta on top of the first, so no retained version needs the first one.
        for i in 100..<111 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        let report = try await w.vacuum(retainVersions: 1, gracePeriod: 0.05)
        #expect(report.objectsDeleted >= 1, "the first version's pk-index should be gone: \(report)")
        try await w.close()  // the writer's own reads are over
        reads.withLock { $0 = 0 }
        let hits = try await reader.search([3, 0], k: 2, include: .all)
        #expect(hits.map(\.id) == [3, 2] || hits.map(\.id) == [3, 4])
        #expect(hits.first?.metadata == ["n": .int(3)] && hits.first?.payload == [3] && hits.first?.vector == [3, 0])
        #expect(reads.withLock { $0 } == 0)
    }

    @Test func verifyReportsCountsThatDisagreeWithThePKIndex() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for i in 0..<10 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        try await w.delete(id: 3)
        try await w.close()
        let name = Manifest.objectName(version: await w.version)
        var m = try Manifest.decode(try await store.read(name), object: name)
        #expect(m.segments.map(\.deadRows) == [1])
        m.segments[0].deadRows = 0  // a writer bug: would show the deleted row
        try await store.put(name, try m.encode())
        let report = try await Vecgo.verify(store)
        #expect(!report.ok)
        #expect(report.problems.contains { $0.object == name && $0.problem.contains("records 0 dead rows") })
    }
}
