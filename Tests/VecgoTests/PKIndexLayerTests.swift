import Foundation
import SegmentFormat
import Stores
import Testing
@testable import Vecgo
import _VecgoTestSupport

/// The key index is layered: a commit writes a delta of the keys it changed, readers combine
/// the chain, compaction (and a chain grown too long) writes a full index again.
@Suite struct PKIndexLayerEngineTests {
    /// Every live key's vector, as `db` sees it.
    static func contents(_ db: Vecgo) async throws -> [UInt64: [Float]] {
        let hits = try await db.search([0, 0], k: 10_000, include: .vector)
        var out: [UInt64: [Float]] = [:]
        for h in hits {
            #expect(out[h.id] == nil, "key \(h.id) returned twice")
            out[h.id] = h.vector
        }
        return out
    }

    static func manifest(_ store: any BlobStore, _ version: UInt64) async throws -> Manifest {
        let name = Manifest.objectName(version: version)
        return try Manifest.decode(try await store.read(name), object: name)
    }

    /// A store that records reads of pk-index objects and every object written.
    static func watched() -> (InterceptingStore, reads: Locked<[String]>, writes: Locked<[String]>) {
        let reads = Locked<[String]>([]), writes = Locked<[String]>([])
        let store = InterceptingStore(onRead: { name in if name.hasPrefix("pkindex_") { reads.withLock { $0.append(name) } } },
                                      onWrite: { name, _ in writes.withLock { $0.append(name) } })
        return (store, reads, writes)
    }

    /// What a 100-row commit wrote.
    struct SmallCommit {
        /// Size of the full index the first commit wrote, and of the small commit's pk-index object.
        var full: UInt64, delta: UInt64
        /// Every object the small commit wrote (segment, pk-index, manifest), in bytes.
        var bytes: UInt64
        var duration: Duration
        var manifest: Manifest
    }

    /// A database of `rows` rows (one IVF segment), and a 100-row commit on it: 50 keys
    /// updated, 40 added, 10 deleted. Returns the size of the pk-index object each wrote.
    static func hundredRowCommit(on rows: Int) async throws -> SmallCommit {
        let (store, _, writes) = Self.watched()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .ivfThreshold(1_000))
        for i in 0..<rows { try await w.upsert(id: UInt64(i), [Float(i % 1000), Float(i / 1000)]) }
        try await w.commit()
        let first = try await Self.manifest(store.base, await w.version)
        for i in 0..<50 { try await w.upsert(id: UInt64(i * 97), [-1, Float(i)]) }
        for i in 0..<40 { try await w.upsert(id: UInt64(rows + i), [-2, Float(i)]) }
        for i in 0..<10 { try await w.delete(id: UInt64(i * 101 + 1)) }
        writes.withLock { $0 = [] }
        let clock = ContinuousClock()
        let t0 = clock.now
        try await w.commit()
        _ = try await w.view.pk()  // until the new version's key index and live rows are ready
        _ = try await w.view.live()
        let duration = clock.now - t0
        let m = try await Self.manifest(store.base, await w.version)
        let written = writes.withLock { $0 }
        #expect(written.filter { $0.hasPrefix("pkindex_") } == [m.pkIndexObject], "the commit wrote one pk-index object, its delta")
        #expect(m.pkIndexLayers.map(\.name) == [first.pkIndexObject, m.pkIndexObject])
        var bytes: UInt64 = 0
        for name in written { bytes += try await store.base.size(name) }
        try await w.close()
        return SmallCommit(full: first.pkIndexSize, delta: m.pkIndexSize, bytes: bytes, duration: duration, manifest: m)
    }

    /// A 100-row commit on 20 000 rows writes about 100 rows' worth of key index (16 bytes per
    /// entry before compression, plus a header and a segment name), not 20 000 rows' worth.
    @Test func aSmallCommitWritesASmallKeyIndex() async throws {
        let c = try await Self.hundredRowCommit(on: 20_000)
        #expect(c.delta <= 100 * 16 + 200, "a 100-row commit wrote a \(c.delta)-byte pk-index (the full one is \(c.full) bytes)")
        #expect(c.full >= 20_000 * 4, "the full index of 20 000 keys is only \(c.full) bytes: the comparison shows nothing")
        // Dead rows counted from the changes alone: 50 updated and 10 deleted rows of the first segment.
        #expect(c.manifest.segments.map(\.deadRows) == [60, 0])
    }

    /// Bytes a 100-row commit writes as key index at 20 000 and 200 000 rows (run with
    /// VECGO_MEASURE_PK=1; prints the numbers).
    @Test func measureSmallCommitsOnLargeDatabases() async throws {
        guard ProcessInfo.processInfo.environment["VECGO_MEASURE_PK"] == "1" else { return }
        for rows in [20_000, 200_000] {
            let c = try await Self.hundredRowCommit(on: rows)
            print("\(rows) rows: full pk-index \(c.full) bytes; a 100-row commit wrote a \(c.delta)-byte delta, \(c.bytes) bytes in all (segment, delta, manifest), in \(c.duration)")
        }
    }

    /// A random history of upserts, deletes, re-inserts of deleted keys and a compaction, with
    /// a reader opened on every version afterwards: each sees exactly the rows of its version.
    @Test func everyVersionReadsItsOwnRowsAcrossLayers() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        var rng = SeededRNG(seed: 11)
        var model: [UInt64: [Float]] = [:]
        var deleted: [UInt64] = []
        var expected: [UInt64: [UInt64: [Float]]] = [:]
        var compacted: UInt64 = 0
        for c in 0..<30 {
            if c == 0 {
                for k in 0..<300 { model[UInt64(k)] = [Float(k), 0] }
            } else {
                for _ in 0..<12 {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0:  // update
                        model[model.keys.randomElement(using: &rng)!] = [Float(c), Float(Int.random(in: 0..<1000, using: &rng))]
                    case 1:  // delete
                        let k = model.keys.randomElement(using: &rng)!
                        model[k] = nil
                        deleted.append(k)
                    case 2 where !deleted.isEmpty:  // a deleted key comes back
                        model[deleted.remove(at: Int.random(in: 0..<deleted.count, using: &rng))] = [Float(c), -1]
                    default:  // a new key
                        model[UInt64(1_000 + c * 100 + model.count % 100)] = [Float(c), -2]
                    }
                }
            }
            // Apply the model's difference from the committed state.
            let before = expected[await w.version] ?? [:]
            for (k, v) in model where before[k] != v { try await w.upsert(id: k, v) }
            for k in before.keys where model[k] == nil { try await w.delete(id: k) }
            try await w.commit()
            expected[await w.version] = model
            // The writer's live rows, derived from its previous view's and the commit's changes,
            // are those a reader computes from the stored layers.
            let fresh = try await Vecgo.open(.remote(store), .readOnly)
            #expect(try await w.view.live() == (try await fresh.view.live()), "commit \(c)")
            #expect(try await Self.contents(w) == model, "commit \(c)")
            try await fresh.close()
            if c == 20 {
                #expect(try await w.compact().version != nil)
                compacted = await w.version
                expected[compacted] = model
            }
        }
        #expect(try await Self.contents(w) == model)
        var layerCounts: [UInt64: Int] = [:]
        for (v, rows) in expected.sorted(by: { $0.key < $1.key }) {
            let reader = try await Vecgo.open(.remote(store), .atVersion(v))
            #expect(try await Self.contents(reader) == rows, "version \(v)")
            try await reader.close()
            layerCounts[v] = try await Self.manifest(store, v).pkIndexLayers.count
        }
        #expect(layerCounts[compacted] == 1, "a compaction writes a full index")
        #expect(layerCounts.values.allSatisfy { $0 <= Vecgo.maxPKIndexLayers })
        // The chain grew, and started over before the compaction: a commit merged its deltas
        // (a chain of two) or wrote a full index (which of the two depends on how many keys the
        // random edits touched, and dictionary order differs between runs).
        let before = layerCounts.filter { $0.key < compacted }.sorted { $0.key < $1.key }.map(\.value)
        #expect(zip(before, before.dropFirst()).contains { $1 < $0 }, "\(layerCounts.sorted { $0.key < $1.key })")
        #expect(layerCounts.values.contains { $0 >= 4 })
        #expect(try await Vecgo.verify(store).ok)
        try await w.close()
    }

    /// Small commits on a large index: the chain grows to 16 layers, then a commit merges the
    /// deltas into one on the same full layer (a chain of two) and it grows again.
    @Test func theChainGrowsToSixteenLayersThenItsDeltasMerge() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for k in 0..<1_000 { try await w.upsert(id: UInt64(k), [Float(k), 0]) }
        try await w.commit()
        var lengths: [Int] = []
        for c in 1...20 {
            try await w.upsert(id: UInt64(c), [Float(c), 1])
            try await w.delete(id: UInt64(500 + c))
            try await w.commit()
            lengths.append(try await Self.manifest(store, await w.version).pkIndexLayers.count)
        }
        #expect(lengths == Array(2...16) + [2, 3, 4, 5, 6])
        // The full layer is the first commit's throughout; the merged delta holds what 16
        // commits did: keys 1...16 at their new rows, 501...516 removed.
        let first = try await Self.manifest(store, 1)
        let merged = try await Self.manifest(store, 17)
        #expect(merged.pkIndexLayers.map(\.name) == [first.pkIndexObject, merged.pkIndexObject])
        #expect(try await Self.manifest(store, 21).pkIndexLayers.first?.name == first.pkIndexObject)
        let delta = try PKIndex.decode(try await store.read(merged.pkIndexObject), object: merged.pkIndexObject)
        #expect(delta.kind == .delta)
        #expect(Set(delta.entries.keys) == Set((1...16).map(UInt64.init)))
        #expect(Set(delta.tombstones) == Set((501...516).map(UInt64.init)))
        var model: [UInt64: [Float]] = [:]
        for k in 0..<1_000 where !(501...520).contains(k) { model[UInt64(k)] = [Float(k), (1...20).contains(k) ? 1 : 0] }
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly)) == model)
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .atVersion(16))) ==
                model.filter { $0.key < 501 || $0.key > 515 }.merging((16...20).map { (UInt64($0), [Float($0), 0]) }, uniquingKeysWith: { $1 })
                    .merging((516...520).map { (UInt64($0), [Float($0), 0]) }, uniquingKeysWith: { $1 }))
        try await w.close()
    }

    /// Many small commits write the full index once: merged deltas keep the chain short, for
    /// the handle that wrote them and for a writer that opens the database later (it learns the
    /// deltas' keys from the layers it reads). Every version reads back as it was written.
    @Test func smallCommitsWriteTheFullIndexOnce() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for k in 0..<1_000 { try await w.upsert(id: UInt64(k), [Float(k), 0]) }
        try await w.commit()
        var seen: [UInt64: [UInt64: [Float]]] = [:]  // version → contents
        var writer = w
        for c in 1...40 {
            if c == 25 {  // another handle takes over the writing
                try await writer.close()
                writer = try await Vecgo.open(.remote(store))
            }
            try await writer.upsert(id: UInt64(c * 7), [Float(c), 2])
            try await writer.upsert(id: UInt64(2_000 + c), [Float(c), 3])
            try await writer.delete(id: UInt64(600 + c))
            try await writer.commit()
            let v = await writer.version
            #expect(try await Self.manifest(store, v).pkIndexLayers.count <= Vecgo.maxPKIndexLayers)
            seen[v] = try await Self.contents(writer)
        }
        try await writer.close()
        var fulls = 0, deltas = 0
        for name in try await store.list(prefix: "pkindex_").map(\.name) {
            let pk = try PKIndex.decode(try await store.read(name), object: name)
            if pk.kind == .full { fulls += 1 } else { deltas += 1 }
        }
        #expect(fulls == 1, "\(fulls) full pk-indexes written over 41 commits (\(deltas) deltas)")
        for (v, contents) in seen {
            let r = try await Vecgo.open(.remote(store), .readOnly, .atVersion(v))
            #expect(try await Self.contents(r) == contents, "version \(v)")
        }
    }

    /// When the deltas would hold more entries than half the full layer, a commit writes a
    /// full index instead.
    @Test func deltasOutgrowingHalfTheFullIndexStartItOver() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for k in 0..<100 { try await w.upsert(id: UInt64(k), [Float(k), 0]) }
        try await w.commit()
        var lengths: [Int] = []
        for c in 1...4 {
            for i in 0..<10 { try await w.upsert(id: UInt64(c * 10 + i), [Float(c), 1]) }  // 10 moved
            for i in 0..<10 { try await w.delete(id: UInt64(50 + c * 10 + i)) }  // 10 removed
            try await w.commit()
            lengths.append(try await Self.manifest(store, await w.version).pkIndexLayers.count)
        }
        // Deltas of 20, then 40 (≤ 50 of 100), then 60 would be too many: full (70 keys); then 20 of 70.
        #expect(lengths == [2, 3, 1, 2])
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly)) == (try await Self.contents(w)))
        #expect(try await Self.contents(w).count == 60)
        try await w.close()
    }

    /// A writer hands the key index it built to its new view: it never reads a pk-index object
    /// after its own commits or compactions. After another writer's commit it reads only the
    /// layers that commit added.
    @Test func writersNeverReadTheirOwnKeyIndexBack() async throws {
        let (store, reads, _) = Self.watched()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for c in 0..<6 {
            for i in 0..<50 { try await w.upsert(id: UInt64(c * 20 + i), [Float(i), Float(c)]) }
            try await w.delete(id: UInt64(c * 3))
            try await w.commit()
            if c == 3 { try await w.compact() }
        }
        _ = try await w.insert([1, 1])  // a key reservation keeps the chain and the index in memory
        try await w.commit()
        _ = try await Self.contents(w)
        #expect(await w.view.holdsPKIndex)
        #expect(reads.withLock { $0 } == [], "the writer read \(reads.withLock { $0 })")

        let other = try await Vecgo.open(.remote(store))
        _ = try await other.view.pk()
        let opened = reads.withLock { $0 }
        let chain = try await Self.manifest(store.base, await other.version).pkIndexLayers.map(\.name)
        #expect(opened.sorted() == chain.sorted(), "opening reads every layer once")
        try await w.upsert(id: 7, [7, 7])
        try await w.commit()
        try await other.refresh()
        _ = try await other.view.pk()
        let added = try await Self.manifest(store.base, await other.version).pkIndexObject
        #expect(Array(reads.withLock { $0 }.dropFirst(opened.count)) == [added], "a refresh reads only the new layer")
        #expect(try await Self.contents(other) == (try await Self.contents(w)))
        try await other.close()
        try await w.close()
    }

    /// Vacuum keeps every layer a retained version's chain needs, and deletes the layers no
    /// retained chain lists.
    @Test func vacuumKeepsTheLayersRetainedVersionsNeed() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .maxCommitObjectAge(0.01))
        for c in 0..<4 {
            for i in 0..<(c == 0 ? 100 : 3) { try await w.upsert(id: UInt64(c * 1_000 + i), [Float(i), Float(c)]) }
            try await w.commit()
        }
        let newest = try await Self.manifest(store, await w.version)
        #expect(newest.pkIndexLayers.count == 4)
        try await Task.sleep(nanoseconds: 50_000_000)
        let report = try await w.vacuum(retainVersions: 1, gracePeriod: 0.02)
        #expect(report.manifestsDeleted == 3)
        let left = Set(try await store.list(prefix: "pkindex_").map(\.name))
        #expect(left == Set(newest.pkIndexLayers.map(\.name)), "vacuum deleted a layer the newest version needs")
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await Self.contents(reader).count == 109)
        // After a compaction the chain is one full index: the old layers go.
        try await w.upsert(id: 1, [5, 5])
        try await w.commit()
        try await w.compact()
        let compacted = try await Self.manifest(store, await w.version)
        try await Task.sleep(nanoseconds: 50_000_000)
        try await w.vacuum(retainVersions: 1, gracePeriod: 0.02)
        #expect(try await store.list(prefix: "pkindex_").map(\.name) == [compacted.pkIndexObject])
        #expect(try await Self.contents(try await Vecgo.open(.remote(store), .readOnly)).count == 109)
        #expect(try await Vecgo.verify(store).ok)
        try await w.close()
    }

    /// `vecgo info` lists the layers of the newest version; `vecgo verify` checks each.
    @Test func theCommandLineToolShowsAndChecksTheLayers() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/vecgo-layers-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try await Vecgo.open(.directory(dir), .create(dimension: 2, metric: .l2))
        for i in 0..<20 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        for i in 1...2 {
            try await w.upsert(id: UInt64(i), [Float(i), 1])
            try await w.commit()
        }
        try await w.close()
        let (status, info) = try await VerifyTests.run(["info", dir])
        #expect(status == 0 && info.contains("pk-index in 3 layers"), "\(info)")
        #expect(info.components(separatedBy: "\n").filter { $0.hasPrefix("  delta pkindex_") }.count == 2, "\(info)")
        let (ok, verified) = try await VerifyTests.run(["verify", dir])
        #expect(ok == 0 && verified.contains("3 pk-indexes: all good"), "\(verified)")
    }

    /// A damaged delta layer is `.corrupted`, naming it, for readers and for `verify`.
    @Test func aDamagedDeltaIsCorruptionNamingIt() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for i in 0..<100 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        try await w.upsert(id: 5, [5, 5])
        try await w.delete(id: 6)
        try await w.close()
        let m = try await Self.manifest(store, await w.version)
        #expect(m.pkIndexLayers.count == 2)
        var bytes = try await store.read(m.pkIndexObject)
        bytes[bytes.count - 10] ^= 0x20
        try await store.put(m.pkIndexObject, bytes)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let error = await #expect(throws: VecgoError.self) { try await reader.search([0, 0], k: 10) }
        #expect(error?.code == .corrupted && error?.message.contains(m.pkIndexObject) == true, "\(String(describing: error))")
        let report = try await Vecgo.verify(store)
        #expect(report.problems.map(\.object) == [m.pkIndexObject], "\(report.problems)")
        #expect(report.pkIndexes == 2)
    }

    /// A chain whose delta points into a segment its manifest does not list is corrupt, and
    /// `verify` names that delta.
    @Test func aDeltaPointingOutsideItsManifestIsNamed() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for i in 0..<100 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        try await w.upsert(id: 5, [5, 5])
        try await w.close()
        let m = try await Self.manifest(store, await w.version)
        var delta = try PKIndex.decode(try await store.read(m.pkIndexObject), object: "d")
        delta.segments = ["segment_elsewhere.bin"]
        let bytes = try delta.encode()
        try await store.put(m.pkIndexObject, bytes)
        var patched = m
        patched.pkIndexSize = UInt64(bytes.count)
        try await store.put(Manifest.objectName(version: m.version), try patched.encode())
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let error = await #expect(throws: VecgoError.self) { try await reader.search([0, 0], k: 10) }
        #expect(error?.code == .corrupted && error?.message.contains(m.pkIndexObject) == true, "\(String(describing: error))")
        let report = try await Vecgo.verify(store)
        #expect(report.problems.contains { $0.object == m.pkIndexObject && $0.problem.contains("segment_elsewhere.bin") }, "\(report.problems)")
    }
}
