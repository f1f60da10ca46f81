// A compaction that loses races to steady writers: each retry is cheap, and nothing the
// writers changed since the compaction's snapshot is undone.
import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

@Suite struct CompactionRebaseTests {
    /// The compactor's store: before each of its manifest puts, up to `races` times, `race`
    /// runs (another writer commits there, so the put loses). Counts the compactor's pk-index
    /// puts.
    final class Race: Sendable {
        let races: Int
        let lost = Locked(0)
        let pkIndexPuts = Locked<[String]>([])
        let race: @Sendable (Int) async throws -> Void
        init(races: Int, _ race: @escaping @Sendable (Int) async throws -> Void) {
            self.races = races
            self.race = race
        }
        func store(over base: any BlobStore) -> InterceptingStore {
            InterceptingStore(base, onWrite: { name, _ in
                if name.hasPrefix("pkindex_") { self.pkIndexPuts.withLock { $0.append(name) } }
            }, beforePutIfAbsent: { name in
                guard name.hasPrefix("MANIFEST-") else { return }
                let n = self.lost.withLock { l -> Int? in
                    guard l < self.races else { return nil }
                    l += 1
                    return l
                }
                if let n { try await self.race(n) }
            })
        }
    }

    /// Against writers that only add keys (the soak's load), a compaction that loses three races
    /// writes its key-index layer once after its first loss and reuses it: two pk-index puts in
    /// four attempts (a full index each attempt before).
    @Test func aCompactionLosingRacesToInsertsWritesItsKeyIndexLayerOnce() async throws {
        let (store, w) = try await MaintenanceTests.fragmented()
        try await w.close()
        let other = try await Vecgo.open(.remote(store))
        let race = Race(races: 3) { n in
            for i in 0..<5 { try await other.upsert(id: UInt64(10_000 + n * 10 + i), MaintenanceTests.vector(n * 10 + i, 5)) }
            try await other.commit()
        }
        let compactor = try await Vecgo.open(.remote(race.store(over: store)))
        let report = try await compactor.compact()
        #expect(race.lost.withLock { $0 } == 3)
        #expect(report.segmentsMerged == 5)
        let puts = race.pkIndexPuts.withLock { $0 }
        #expect(puts.count == 2, "pk-index puts of the compactor: \(puts)")
        // The version it made: the three other commits' segments and the output, its chain the
        // base's, the compaction's layer, then the three later deltas.
        let manifest = try Manifest.decode(try await store.read(Manifest.objectName(version: report.version!)),
                                           object: "MANIFEST")
        #expect(manifest.segments.count == 4)
        #expect(manifest.pkIndexLayers.suffix(4).first?.name == puts.last)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let final = try await MaintenanceTests.contents(reader)
        for n in 1...3 { for i in 0..<5 { #expect(final[UInt64(10_000 + n * 10 + i)] != nil) } }
        #expect(try await Vecgo.verify(store).ok)
        try await other.close()
        try await compactor.close()
    }

    /// Writers that upsert and delete keys living in the segments being compacted, and once
    /// rewrite most keys (their chain starts over with a full index): the compacted database
    /// holds exactly what the same writes give without a compaction.
    @Test func aCompactionLosingRacesKeepsEveryChangeMadeSinceItsSnapshot() async throws {
        let (store, w) = try await MaintenanceTests.fragmented()
        try await w.close()
        let (modelStore, modelWriter) = try await MaintenanceTests.fragmented()
        try await modelWriter.close()
        let other = try await Vecgo.open(.remote(store))
        let model = try await Vecgo.open(.remote(modelStore))
        @Sendable func change(_ db: Vecgo, _ n: Int) async throws {
            try await db.upsert(id: UInt64(n * 20 + 1), MaintenanceTests.vector(n, 77), metadata: ["race": .int(Int64(n))])
            try await db.delete(id: UInt64(n * 20 + 3))
            try await db.upsert(id: UInt64(20_000 + n), MaintenanceTests.vector(n, 8))
            if n == 2 {  // most keys at once: the next index is a full one
                for k in 400..<500 where k % 10 != 0 { try await db.upsert(id: UInt64(k), MaintenanceTests.vector(k, 6)) }
                for k in 300..<400 where k % 10 != 0 { try await db.upsert(id: UInt64(k), MaintenanceTests.vector(k, 6)) }
            }
            try await db.commit()
        }
        let race = Race(races: 4) { n in try await change(other, n) }
        let compactor = try await Vecgo.open(.remote(race.store(over: store)))
        let report = try await compactor.compact()
        #expect(race.lost.withLock { $0 } == 4)
        #expect(report.version != nil)
        for n in 1...4 { try await change(model, n) }
        let want = try await MaintenanceTests.contents(model)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await MaintenanceTests.contents(reader) == want)
        #expect(try await Vecgo.verify(store).ok)
        // Writers go on from the compacted version, and a second compaction merges again.
        try await other.upsert(id: 1, MaintenanceTests.vector(1, 1))
        try await other.commit()
        try await model.upsert(id: 1, MaintenanceTests.vector(1, 1))
        try await model.commit()
        _ = try await compactor.compact()
        let again = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await MaintenanceTests.contents(again) == (try await MaintenanceTests.contents(model)))
        #expect(try await Vecgo.verify(store).ok)
        for db in [other, model, compactor] { try await db.close() }
    }
}
