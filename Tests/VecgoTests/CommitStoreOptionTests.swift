// The engine's use of a CommitStore passed at open (`.commitStore(_:)`): every commit and the
// newest version go through it, and manifests it holds are read from it.
import Foundation
import SegmentFormat
import Stores
import Synchronization
import Testing
import Vecgo

/// A commit store that keeps manifests in its own table (memory), never in the object store,
/// and counts its calls: what the engine sees of it is all it could have got from it.
final class TableCommitStore: CommitStore {
    private let table = Mutex<[UInt64: [UInt8]]>([:])
    let commits = Atomic<Int>(0), latests = Atomic<Int>(0)

    var versions: [UInt64] { table.withLock { $0.keys.sorted() } }

    func commit(version: UInt64, manifest name: String, _ bytes: [UInt8]) async throws {
        commits.add(1, ordering: .relaxed)
        try table.withLock { t in
            guard t[version] == nil else { throw StoreError(.alreadyExists, "version \(version) is taken", object: name) }
            t[version] = bytes
        }
    }

    func latest() async throws -> LatestVersion {
        latests.add(1, ordering: .relaxed)
        return table.withLock { $0.keys.max() }.map(LatestVersion.version) ?? .empty
    }

    func committedManifest(version: UInt64, name: String) async throws -> [UInt8]? {
        table.withLock { $0[version] }
    }
}

@Suite struct CommitStoreOptionTests {
    /// Versions are decided by the commit store passed at open, not by the backend's objects:
    /// the manifests live only in the table, and a second handle finds the data through it.
    @Test func aCommitStorePassedAtOpenDecidesEveryVersion() async throws {
        let objects = MemoryBlobStore(), table = TableCommitStore()
        let w = try await Vecgo.open(.remote(objects), .commitStore(table), .create(dimension: 2, metric: .l2))
        #expect(table.latests.load(ordering: .relaxed) >= 1)  // the open asked it for the newest version
        for i in 0..<3 {
            try await w.upsert(id: UInt64(i), [Float(i), 0])
            try await w.commit()
        }
        let version = await w.version
        try await w.close()
        #expect(version >= 3)
        #expect(table.versions == Array(1...version))
        #expect(table.commits.load(ordering: .relaxed) == Int(version))  // one commit call per version, no lost race
        #expect(try await objects.list(prefix: Manifest.objectNamePrefix).isEmpty)  // nothing bypassed it

        let r = try await Vecgo.open(.remote(objects), .commitStore(table), .readOnly)
        #expect(await r.version == version)
        #expect(try await r.search([0, 0], k: 10).map(\.id).sorted() == [0, 1, 2])
        try await r.close()
        // Without it the same objects hold no database.
        let e = await #expect(throws: VecgoError.self) { _ = try await Vecgo.open(.remote(objects), .readOnly) }
        #expect(e?.code == .notFound)
    }

    /// Two handles racing through one commit store: the loser is told `.alreadyExists`, rebases
    /// and commits the next version; nothing is lost.
    @Test func aLostRaceInThePassedCommitStoreIsRebased() async throws {
        let objects = MemoryBlobStore(), table = TableCommitStore()
        let a = try await Vecgo.open(.remote(objects), .commitStore(table), .create(dimension: 2, metric: .l2))
        let b = try await Vecgo.open(.remote(objects), .commitStore(table), .create(dimension: 2, metric: .l2))
        try await a.upsert(id: 1, [1, 0])
        try await b.upsert(id: 2, [2, 0])
        try await a.commit()
        try await b.commit()  // built on the version a already took: loses once, then commits after it
        #expect(table.commits.load(ordering: .relaxed) > table.versions.count)  // a lost race was counted
        let r = try await Vecgo.open(.remote(objects), .commitStore(table), .readOnly)
        #expect(try await r.search([0, 0], k: 10).map(\.id).sorted() == [1, 2])
        for h in [a, b, r] { try await h.close() }
    }
}
