import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// Keys, filters, included fields, history and fencing: the database semantics of the façade,
/// across the memtable and every segment layout.
@Suite struct SemanticsTests {
    /// Which layout the committed rows get: flat (< 2 000 rows), graph, or IVF.
    enum Layout: CaseIterable { case memtable, flat, graph, ivf }

    static func rows(_ n: Int, seed: UInt64) -> [[Float]] { SegmentLayoutEngineTests.clustered(n, 8, seed: seed) }

    /// A writer holding `n` rows with key i+1, metadata `i` (int), `colour` (string), `tags`
    /// (string list) and payload [i % 256], committed in the layout asked (or pending).
    static func database(_ layout: Layout, n: Int) async throws -> (Vecgo, MemoryBlobStore, [[Float]]) {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 8, metric: .l2), .ivfThreshold(2_500))
        let data = rows(n, seed: 90)
        for (i, v) in data.enumerated() {
            try await w.upsert(id: UInt64(i + 1), v, metadata: Self.metadata(i), payload: [UInt8(i % 256)])
        }
        if layout != .memtable { try await w.commit() }
        return (w, store, data)
    }

    static func metadata(_ i: Int) -> Metadata {
        ["i": .int(Int64(i)), "colour": .string(["red", "green", "blue"][i % 3]),
         "tags": .stringList(i % 5 == 0 ? ["five"] : [])]
    }

    static func count(for layout: Layout) -> Int {
        switch layout {
        case .memtable, .flat: 600
        case .graph: 2_200
        case .ivf: 3_000
        }
    }

    /// Exact top-k among rows `keep` admits.
    static func exact(_ data: [[Float]], _ q: [Float], k: Int, keep: (Int) -> Bool) -> [UInt64] {
        let scored = data.indices.filter(keep).map { i in
            (id: UInt64(i + 1), d: zip(data[i], q).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) })
        }
        return scored.sorted { $0.d < $1.d || ($0.d == $1.d && $0.id < $1.id) }.prefix(k).map(\.id)
    }

    @Test(arguments: Layout.allCases)
    func filtersReturnKMatchingRowsWheneverTheyExist(_ layout: Layout) async throws {
        let n = Self.count(for: layout)
        let (w, _, data) = try await Self.database(layout, n: n)
        let q = Self.rows(1, seed: 91)[0]
        let cases: [(Filter, (Int) -> Bool)] = [
            (.equals("colour", .string("red")), { $0 % 3 == 0 }),
            (.range("i", min: .int(100), max: .int(110)), { $0 >= 100 && $0 <= 110 }),
            (.range("i", min: .float(99.5), max: nil, minExclusive: true), { $0 >= 100 }),
            (.isIn("colour", [.string("green"), .string("blue")]), { $0 % 3 != 0 }),
            (.and([.equals("colour", .string("blue")), .range("i", min: nil, max: .int(50), maxExclusive: true)]),
             { $0 % 3 == 2 && $0 < 50 }),
            (.or([.equals("i", .int(3)), .equals("i", .int(4))]), { $0 == 3 || $0 == 4 }),
            (.not(.equals("tags", .string("five"))), { $0 % 5 != 0 }),
            (.equals("missing", .int(1)), { _ in false }),
            (.equals("i", .int(7)), { $0 == 7 }),  // one row: far below the graph's reach
        ]
        for (filter, keep) in cases {
            let matching = data.indices.filter(keep).count
            let got = try await w.search(q, k: 10, filter: filter, options: SearchOptions(ef: 64, nprobe: 2))
            #expect(got.count == min(10, matching), "\(layout) \(filter)")
            let gotIDs = got.map(\.id)
            #expect(gotIDs.allSatisfy { keep(Int($0) - 1) }, "\(layout) \(filter) returned a row that does not match")
            if matching <= 20 {
                #expect(gotIDs == Self.exact(data, q, k: 10, keep: keep), "\(layout) \(filter)")
            }
        }
    }

    @Test(arguments: Layout.allCases)
    func resultsCarryMetadataPayloadAndVectorOnRequest(_ layout: Layout) async throws {
        let (w, _, data) = try await Self.database(layout, n: Self.count(for: layout))
        let q = data[42]
        let plain = try await w.search(q, k: 3)
        #expect(plain.allSatisfy { $0.metadata == nil && $0.payload == nil && $0.vector == nil })
        let full = try await w.search(q, k: 3, include: .all)
        #expect(full.map(\.id) == plain.map(\.id))
        for r in full {
            let i = Int(r.id) - 1
            #expect(r.metadata == Self.metadata(i), "\(layout)")
            #expect(r.payload == [UInt8(i % 256)], "\(layout)")
            #expect(r.vector == data[i], "\(layout)")
        }
    }

    @Test(arguments: [Layout.memtable, .flat, .graph, .ivf])
    func upsertsAndDeletesHideOldRowsPendingAndCommitted(_ layout: Layout) async throws {
        let (w, store, data) = try await Self.database(layout, n: Self.count(for: layout))
        let far: [Float] = Array(repeating: 50, count: 8)
        // Key 43 moves far away; key 44 is deleted; both before and after a commit.
        try await w.upsert(id: 43, far, metadata: ["moved": .bool(true)])
        try await w.delete(id: 44)
        for round in 0..<2 {
            let near = try await w.search(data[42], k: 20).map(\.id)
            #expect(!near.contains(43) && !near.contains(44), "\(layout) round \(round)")
            let moved = try await w.search(far, k: 1, include: .metadata)
            #expect(moved.first?.id == 43 && moved.first?.metadata == ["moved": .bool(true)], "\(layout) round \(round)")
            #expect(try await w.search(data[43], k: 1).first?.id != 44)
            try await w.commit()
        }
        // A reader sees the same, and exactly one row per live key.
        let r = try await Vecgo.open(.remote(store), .readOnly)
        let all = try await r.search(data[0], k: 10_000).map(\.id)
        #expect(all.count == data.count - 1)
        #expect(Set(all).count == all.count)
        #expect(!all.contains(44))
        // Deleting every row empties the results; deleting a missing key is not an error.
        try await w.delete(id: 99_999)
        for id in all { try await w.delete(id: id) }
        #expect(try await w.search(data[0], k: 5).isEmpty)
        try await w.commit()
        #expect(try await r.refresh() > 0)
        #expect(try await r.search(data[0], k: 5).isEmpty)
    }

    @Test func pastVersionsStayReadableByNumberAndTime() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.upsert(id: 1, [0, 0])
        let v1 = try await w.commit()
        try await Task.sleep(nanoseconds: 20_000_000)
        let between = Date()
        try await Task.sleep(nanoseconds: 20_000_000)
        try await w.upsert(id: 1, [5, 5])
        try await w.upsert(id: 2, [1, 1])
        let v2 = try await w.commit()

        let old = try await Vecgo.open(.remote(store), .atVersion(v1))
        #expect(await old.version == v1 && old.isReadOnly)
        #expect(try await old.search([0, 0], k: 5, include: .vector).map(\.vector) == [[0, 0]])
        let asOf = try await Vecgo.open(.remote(store), .asOf(between))
        #expect(await asOf.version == v1)
        let now = try await Vecgo.open(.remote(store), .asOf(Date()))
        #expect(await now.version == v2)
        await #expect(throws: VecgoError.self) { try await old.refresh() }
        await #expect(throws: VecgoError.self) { try await old.upsert(id: 3, [0, 0]) }
        let missing = await #expect(throws: VecgoError.self) { try await Vecgo.open(.remote(store), .atVersion(v2 + 5)) }
        #expect(missing?.code == .notFound)
        let early = await #expect(throws: VecgoError.self) {
            try await Vecgo.open(.remote(store), .asOf(Date(timeIntervalSince1970: 0)))
        }
        #expect(early?.code == .notFound)
        let versions = try await Vecgo.versions(.remote(store))
        #expect(versions.map(\.version) == Array(1...v2))
        #expect(versions.map(\.commitTime) == versions.map(\.commitTime).sorted())
    }

    @Test func anExclusiveWriterFencesOlderWriters() async throws {
        let store = MemoryBlobStore()
        let zombie = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await zombie.upsert(id: 1, [0, 0])
        try await zombie.commit()
        let owner = try await Vecgo.open(.remote(store), .exclusiveWriter)
        try await zombie.upsert(id: 2, [1, 1])
        let error = await #expect(throws: VecgoError.self) { try await zombie.commit() }
        #expect(error?.code == .fenced)
        #expect(await zombie.pendingCount == 1)
        try await owner.upsert(id: 3, [2, 2])
        try await owner.commit()
        // A writer opened after the takeover works under the new epoch.
        let later = try await Vecgo.open(.remote(store))
        try await later.upsert(id: 4, [3, 3])
        try await later.commit()
        let ids = try await Vecgo.open(.remote(store), .readOnly).search([0, 0], k: 10).map(\.id)
        #expect(Set(ids) == [1, 3, 4])
    }

    @Test func aReaderWithARefreshIntervalFollowsTheWriter() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.upsert(id: 1, [0, 0])
        try await w.commit()
        let r = try await Vecgo.open(.remote(store), .readOnly, .refreshInterval(0.02))
        try await w.upsert(id: 2, [1, 1])
        let v = try await w.commit()
        var seen = await r.version
        for _ in 0..<200 where seen < v {
            try await Task.sleep(nanoseconds: 10_000_000)
            seen = await r.version
        }
        #expect(seen == v)
        try await r.close()
    }

    @Test func stringKeysUpsertDeleteAndComeBack() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.upsert(key: "alpha", [0, 0], metadata: ["n": .int(1)])
        try await w.upsert(key: "beta", [1, 1])
        try await w.upsert(key: "ünï-cødé key", [2, 2])
        try await w.commit()
        try await w.upsert(key: "alpha", [0.5, 0.5], metadata: ["n": .int(2)])  // replaces, committed or not
        try await w.delete(key: "beta")
        for round in 0..<2 {
            let all = try await w.search([0, 0], k: 10, include: .metadata)
            #expect(all.compactMap(\.key).sorted() == ["alpha", "ünï-cødé key"], "round \(round)")
            #expect(all.first { $0.key == "alpha" }?.metadata?["n"] == .int(2))
            #expect(all.allSatisfy { $0.id >= 1 << 63 }, "string keys live above generated ones")
            try await w.commit()
        }
        #expect(Vecgo.id(forKey: "alpha") == Vecgo.id(forKey: "alpha") && Vecgo.id(forKey: "alpha") != Vecgo.id(forKey: "alphb"))
        // Another string stored under alpha's id (a hash collision, forced here) is refused.
        try await w.upsert(id: Vecgo.id(forKey: "gamma"), [3, 3], metadata: [Vecgo.keyField: .string("not gamma")])
        try await w.commit()
        let collision = await #expect(throws: VecgoError.self) { try await w.upsert(key: "gamma", [4, 4]) }
        #expect(collision?.code == .invalidArgument)
        let deleteCollision = await #expect(throws: VecgoError.self) { try await w.delete(key: "gamma") }
        #expect(deleteCollision?.code == .invalidArgument)
    }

    @Test func batchInsertChecksEveryRowFirst() async throws {
        let w = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: 2, metric: .l2))
        let bad = await #expect(throws: VecgoError.self) {
            try await w.batchInsert([([0, 0], [:], nil), ([.nan, 0], [:], nil)])
        }
        #expect(bad?.message.contains("row 1") == true)
        #expect(await w.pendingCount == 0)
        let ids = try await w.batchInsert([([0, 0], [:], nil), ([1, 1], ["a": .bool(true)], [9])])
        #expect(ids.count == 2 && ids[0] != ids[1])
        #expect(try await w.search([1, 1], k: 1, include: .all).first?.payload == [9])
    }
}

/// A store whose create-if-absent fails while `failing` is set (a network outage at the
/// commit point); `attempts` counts create-if-absent calls (commit attempts).
final class FlakyCommits: Sendable {
    let failing: Locked<Bool>
    let attempts: Locked<Int>
    let store: InterceptingStore

    init(_ base: any BlobStore) {
        let failing = Locked(false), attempts = Locked(0)
        self.failing = failing
        self.attempts = attempts
        store = InterceptingStore(base, onWrite: { _, kind in
            guard kind == .putIfAbsent else { return }
            attempts.withLock { $0 += 1 }
            if failing.withLock({ $0 }) { throw StoreError(.network, "injected outage") }
        })
    }
}

@Suite struct TransientFailureTests {
    /// A create that landed but answered with an error, and a read-back that fails at first:
    /// the commit reads again until it learns the version is its own, and applies its batch
    /// exactly once.
    @Test func aCommitWhoseAnswerWasLostLearnsItLanded() async throws {
        // The first manifest create after arming lands but answers with an error; then the
        // next two manifest reads fail: the commit's outcome is unknown for a while.
        let armed = Locked(false), answerLost = Locked(false), readFailures = Locked(2)
        let store = InterceptingStore(onRead: { name in
            if name.hasPrefix("MANIFEST-"), answerLost.withLock({ $0 }), readFailures.withLock({ f in
                defer { f = max(0, f - 1) }
                return f > 0
            }) {
                throw StoreError(.network, "injected outage", object: name)
            }
        }, afterPutIfAbsent: { name in
            if name.hasPrefix("MANIFEST-"), armed.withLock({ a in defer { a = false }; return a }) {
                answerLost.withLock { $0 = true }
                throw StoreError(.network, "the answer was lost", object: name)
            }
        })
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .commitAttempts(1))
        try await w.upsert(id: 1, [1, 0])
        try await w.commit()
        for i in 2..<10 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        armed.withLock { $0 = true }
        let version = try await w.commit()
        #expect(version == 2)
        #expect(readFailures.withLock { $0 } == 0, "the read-back never failed: the test shows nothing")
        #expect(await w.pendingCount == 0)
        try await w.close()
        #expect(try await Vecgo.versions(.remote(store.base)).count == 2, "the batch was committed twice")
        let reader = try await Vecgo.open(.remote(store.base), .readOnly)
        #expect(try await reader.search([0, 0], k: 100).count == 9)
    }

    /// A failed pk-index read is reported by the query that met it, and the next query reads
    /// it again: one outage never leaves a handle unusable.
    @Test func aFailedPKIndexReadDoesNotPoisonTheView() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for i in 0..<20 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        try await w.delete(id: 3)
        try await w.close()
        let failures = Locked(12)  // the first reads of pk-index objects (2 layers here) fail
        let flaky = InterceptingStore(store, onRead: { name in
            if name.hasPrefix("pkindex_"), failures.withLock({ f in defer { f -= 1 }; return f > 0 }) {
                throw StoreError(.network, "injected outage", object: name)
            }
        })
        let reader = try await Vecgo.open(.remote(flaky), .readOnly)
        var failed = 0
        var answer: [UInt64] = []
        for _ in 0..<5 where answer.isEmpty {
            do { answer = try await reader.search([0, 0], k: 100).map(\.id) } catch let e as VecgoError {
                #expect(e.code == .unavailable, "\(e)")
                failed += 1
            }
        }
        #expect(failed >= 1, "the outage was never met: the test shows nothing")
        #expect(Set(answer) == Set((0..<20).map(UInt64.init)).subtracting([3]))
    }
}

@Suite struct WritesDuringCommitsTests {
    @Test func writesMadeWhileACommitIsInFlightAreKeptForTheNext() async throws {
        let store = MemoryBlobStore()
        let slow = RoundTripRecorder(store, delayMillis: 30)
        let w = try await Vecgo.open(.remote(slow), .create(dimension: 2, metric: .l2))
        for i in 0..<50 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        let first = Task { try await w.commit() }
        try await Task.sleep(nanoseconds: 10_000_000)
        for i in 50..<80 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.delete(id: 3)
        // While the first commit runs, every row is searchable once.
        let during = try await w.search([0, 0], k: 1_000).map(\.id)
        #expect(Set(during).count == during.count && during.count == 79)
        let v1 = try await first.value
        #expect(await w.pendingCount > 0, "the rows written during the commit vanished")
        let v2 = try await w.commit()
        #expect(v2 > v1)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let ids = Set(try await reader.search([0, 0], k: 1_000).map(\.id))
        #expect(ids == Set((0..<80).map(UInt64.init)).subtracting([3]))
    }

    @Test func aFailedCommitPutsItsWritesBackUnderNewerOnes() async throws {
        let store = MemoryBlobStore()
        let flaky = FlakyCommits(store)
        let w = try await Vecgo.open(.remote(flaky.store), .create(dimension: 2, metric: .l2), .commitAttempts(1))
        try await w.upsert(id: 1, [1, 1])
        try await w.upsert(id: 2, [2, 2])
        try await w.commit()
        try await w.upsert(id: 1, [10, 10])
        try await w.delete(id: 2)
        try await w.upsert(id: 5, [5, 5])
        flaky.failing.withLock { $0 = true }
        let error = await #expect(throws: VecgoError.self) { try await w.commit() }
        #expect(error?.code == .unavailable)
        try await w.upsert(id: 5, [50, 50])  // newer than the failed batch
        flaky.failing.withLock { $0 = false }
        try await w.commit()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let rows = try await reader.search([0, 0], k: 10, include: .vector)
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0.vector!) }) == [1: [10, 10], 5: [50, 50]])
    }

    @Test func aFailedBackgroundCommitStopsFlushingAndBoundsPendingWrites() async throws {
        let flaky = FlakyCommits(MemoryBlobStore())
        let w = try await Vecgo.open(.remote(flaky.store), .create(dimension: 2, metric: .l2), .memtableBudget(10), .commitAttempts(1))
        try await w.upsert(id: 0, [0, 0])
        try await w.commit()
        flaky.failing.withLock { $0 = true }
        for i in 1...10 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }  // reaches the budget
        for _ in 0..<500 where await w.backgroundCommitError == nil { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(await w.backgroundCommitError?.code == .unavailable)
        let attempts = flaky.attempts.withLock { $0 }
        for i in 11..<20 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(flaky.attempts.withLock { $0 } == attempts, "every write over the budget started another doomed commit")
        try await w.upsert(id: 20, [20, 0])  // the 20th pending row: twice the budget
        let refused = await #expect(throws: VecgoError.self) { try await w.upsert(id: 21, [21, 0]) }
        #expect(refused?.message.contains("commit() to retry") == true)
        flaky.failing.withLock { $0 = false }
        try await w.commit()
        #expect(await w.backgroundCommitError == nil)
        try await w.upsert(id: 21, [21, 0])  // accepted again
        try await w.close()
        let reader = try await Vecgo.open(.remote(flaky.store), .readOnly)
        #expect(try await reader.search([0, 0], k: 100).count == 22)
    }

    @Test func aMemtableOverItsBudgetIsCommittedInTheBackground() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(RoundTripRecorder(store, delayMillis: 5)), .create(dimension: 2, metric: .l2),
                                     .memtableBudget(100))
        var ids: [UInt64] = []
        for i in 0..<350 {
            ids.append(try await w.insert([Float(i), 1]))
            #expect(try await w.search([Float(i), 1], k: 1).first?.id == ids.last, "row \(i) not searchable at once")
        }
        // The first crossing of the budget started a commit nobody asked for.
        var pending = await w.pendingCount
        for _ in 0..<500 where pending >= 350 {
            try await Task.sleep(nanoseconds: 10_000_000)
            pending = await w.pendingCount
        }
        #expect(pending < 350, "no background commit happened")
        #expect(try await Vecgo.versions(.remote(store)).count >= 2)  // the key reservation + a flush
        #expect(await w.backgroundCommitError == nil)
        try await w.close()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(Set(try await reader.search([0, 0], k: 1_000).map(\.id)) == Set(ids))
    }
}
