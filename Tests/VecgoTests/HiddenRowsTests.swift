// Pending writes hide the committed rows of their keys by row (HiddenRows): each segment is asked
// for k rows however many keys are pending, and the hidden rows stay right as writes, commits,
// other writers' versions and commits in flight come and go.
import Foundation
@testable import IndexCore
import SegmentFormat
import Stores
import Testing
@testable import Vecgo
import _VecgoTestSupport

@Suite struct HiddenRowsTests {
    static let dim = 8

    /// What a search over everything must return: each live key once, at its newest vector.
    static func expectAll(_ db: Vecgo, _ truth: [UInt64: [Float]], _ what: String) async throws {
        let probe = [Float](repeating: 0, count: dim)
        let got = try await db.search(probe, k: 10_000)
        #expect(got.count == truth.count, "\(what): \(got.count) results for \(truth.count) live keys")
        #expect(Set(got.map(\.id)).count == got.count, "\(what): a key came back twice (an old row was not hidden)")
        for r in got {
            guard let v = truth[r.id] else {
                Issue.record("\(what): key \(r.id) came back but is deleted")
                continue
            }
            let d = v.reduce(Float(0)) { $0 + $1 * $1 }
            #expect(abs(r.distance - d) <= 1e-3 * max(1, d), "\(what): key \(r.id) at distance \(r.distance), its newest row is at \(d)")
        }
    }

    /// Rewrites each of `keys` with a vector far from the clustered rows (components drawn from
    /// `range`) and records it in `truth`.
    static func moveFar(_ db: Vecgo, _ keys: some Sequence<UInt64>, range: ClosedRange<Float> = 20...30,
                        truth: inout [UInt64: [Float]], rng: inout SplitMix64) async throws {
        for key in keys {
            let moved = (0..<dim).map { _ in Float.random(in: range, using: &rng) }
            try await db.upsert(id: key, moved)
            truth[key] = moved
        }
    }

    /// Checks every result (``expectAll(_:_:_:)``) while the gate holds a commit's build.
    static func expectAllWhileHeld(_ gate: OffActorBuildTests.Gate, _ db: Vecgo, _ truth: [UInt64: [Float]], _ what: String) async throws {
        let checked = try await OffActorBuildTests.searchWhileHeld(gate) {
            try await Self.expectAll(db, truth, what)
            return []
        }
        #expect(checked != nil, "the search did not finish while the commit's build was held")
    }

    @Test(arguments: [600, 2_200, 3_000])  // flat, graph and IVF segments
    func pendingWritesOfCommittedKeysHideTheirRowsAsTheyGrow(_ n: Int) async throws {
        let store = MemoryBlobStore()
        let db = try await Vecgo.open(.remote(store), .create(dimension: Self.dim, metric: .l2), .ivfThreshold(2_500))
        var truth: [UInt64: [Float]] = [:]
        for (i, v) in SegmentLayoutEngineTests.clustered(n, Self.dim, seed: 140).enumerated() {
            try await db.upsert(id: UInt64(i), v)
            truth[UInt64(i)] = v
        }
        try await db.commit()
        try await Self.expectAll(db, truth, "\(n) committed")
        // Committed keys rewritten (moved far off) and deleted a few at a time, searched after
        // each step: the bitmaps are extended with the keys written since the last search.
        var rng = SplitMix64(seed: 141)
        for step in 0..<6 {
            for _ in 0..<40 {
                let key = UInt64.random(in: 0..<UInt64(n), using: &rng)
                try await Self.moveFar(db, [key], truth: &truth, rng: &rng)
            }
            let gone = UInt64.random(in: 0..<UInt64(n), using: &rng)
            try await db.delete(id: gone)
            truth[gone] = nil
            try await Self.expectAll(db, truth, "\(n) rows, step \(step)")
            if step == 2 {
                try await db.commit()  // a new version and a new batch: the bitmaps start over
                try await Self.expectAll(db, truth, "\(n) rows, after a commit at step \(step)")
            }
        }
        // Another writer commits first: this handle's commit builds on its version.
        let other = try await Vecgo.open(.remote(store))
        let fresh = (0..<Self.dim).map { Float($0) + 40 }
        try await other.upsert(id: 1_000_000, fresh)
        try await other.commit()
        truth[1_000_000] = fresh
        try await db.commit()
        try await Self.expectAll(db, truth, "\(n) rows, all committed on top of another writer's version")
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        try await Self.expectAll(reader, truth, "\(n) rows, a reader")
        try await other.close()
        try await db.close()
    }

    @Test func keysOfACommitInFlightStayHiddenUntilItsVersionIsThere() async throws {
        // A graph-layout commit of 5 000 rows (400 of them committed keys moved off) held half-way,
        // while more committed keys are written: both batches' keys must hide their old rows.
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2))
        var truth: [UInt64: [Float]] = [:]
        for (i, v) in SegmentLayoutEngineTests.clustered(3_000, Self.dim, seed: 142).enumerated() {
            try await db.upsert(id: UInt64(i), v)
            truth[UInt64(i)] = v
        }
        try await db.commit()
        var rng = SplitMix64(seed: 143)
        for (i, v) in SegmentLayoutEngineTests.clustered(OffActorBuildTests.rows - 400, Self.dim, seed: 144).enumerated() {
            try await db.upsert(id: UInt64(10_000 + i), v)
            truth[UInt64(10_000 + i)] = v
        }
        try await Self.moveFar(db, UInt64(0)..<400, truth: &truth, rng: &rng)
        let gate = OffActorBuildTests.Gate()
        await db.setSegmentBuildHook(gate.hook)
        let commit = Task { try await db.commit() }
        #expect(try await gate.waitUntilHeld(), "the commit's segment build never reached graph row \(OffActorBuildTests.holdAt)")
        var during = truth
        try await Self.moveFar(db, UInt64(400)..<450, truth: &during, rng: &rng)  // pending behind the commit in flight
        try await db.delete(id: 5)  // moved by the batch in flight, deleted since
        during[5] = nil
        // Rows of the batch in flight, rewritten since.
        try await Self.moveFar(db, [UInt64(6), 7, 10_000, 10_001], range: 30...40, truth: &during, rng: &rng)
        try await Self.expectAllWhileHeld(gate, db, during, "during the commit")
        #expect(try await commit.value == 2)
        try await Self.expectAll(db, during, "after the commit, its successor pending")
        try await db.commit()
        try await Self.expectAll(db, during, "all committed")
        try await db.close()
    }

    @Test func keysWrittenDuringACommitHideItsSpilledRows() async throws {
        // A batch of 7 000 rows written out 2 500 at a time: two spilled segments and a 2 000-row
        // table (a graph segment, whose build the test holds). Keys of all three are rewritten
        // or deleted while the commit is in flight.
        let perSpill = 2_500
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2),
                                      .maxSegmentBytes(perSpill * Self.dim * 4))
        var truth: [UInt64: [Float]] = [:]
        for (i, v) in SegmentLayoutEngineTests.clustered(7_000, Self.dim, seed: 148).enumerated() {
            try await db.upsert(id: UInt64(i), v)
            truth[UInt64(i)] = v
        }
        let gate = OffActorBuildTests.Gate()
        await db.setSegmentBuildHook(gate.hook)
        let commit = Task { try await db.commit() }
        #expect(try await gate.waitUntilHeld(), "the commit's segment build never reached graph row \(OffActorBuildTests.holdAt)")
        var rng = SplitMix64(seed: 149)
        // Keys of the first spill, the second spill and the table.
        try await Self.moveFar(db, [UInt64(1), 2, 2_600, 2_601, 5_500, 6_999], truth: &truth, rng: &rng)
        for key in [UInt64(3), 2_602, 5_501] {
            try await db.delete(id: key)
            truth[key] = nil
        }
        try await Self.expectAllWhileHeld(gate, db, truth, "during the commit of spilled rows")
        _ = try await commit.value
        try await Self.expectAll(db, truth, "after the commit")
        try await db.commit()
        try await Self.expectAll(db, truth, "all committed")
        try await db.close()
    }

    @Test func rewritesOfPendingSpilledKeysHideTheirRows() async throws {
        // 2 500 pending rows written out 1 000 at a time (two spilled segments, 500 in the table);
        // keys of the spills rewritten and deleted step by step, searched after each step.
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2),
                                      .maxSegmentBytes(1_000 * Self.dim * 4))
        var truth: [UInt64: [Float]] = [:]
        for (i, v) in SegmentLayoutEngineTests.clustered(2_500, Self.dim, seed: 150).enumerated() {
            try await db.upsert(id: UInt64(i), v)
            truth[UInt64(i)] = v
        }
        try await Self.expectAll(db, truth, "spilled, nothing rewritten")
        var rng = SplitMix64(seed: 151)
        for step in 0..<5 {
            for _ in 0..<20 {
                let key = UInt64.random(in: 0..<2_000, using: &rng)  // in one of the spills
                try await Self.moveFar(db, [key], truth: &truth, rng: &rng)
            }
            let gone = UInt64.random(in: 0..<2_000, using: &rng)
            try await db.delete(id: gone)
            truth[gone] = nil
            try await Self.expectAll(db, truth, "spilled, step \(step)")
        }
        try await db.commit()
        try await Self.expectAll(db, truth, "committed")
        try await db.close()
    }

    @Test func extendingTheBitmapsEqualsComputingThemAnew() async throws {
        // HiddenRows alone: bitmaps extended key by key equal those computed at once, and a new
        // batch or version starts over.
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2), .ivfThreshold(2_500))
        for (i, v) in SegmentLayoutEngineTests.clustered(3_000, Self.dim, seed: 145).enumerated() { try await db.upsert(id: UInt64(i), v) }
        try await db.commit()
        for (i, v) in SegmentLayoutEngineTests.clustered(600, Self.dim, seed: 146).enumerated() { try await db.upsert(id: UInt64(5_000 + i), v) }
        try await db.commit()
        let view = await db.view
        let live = try await view.live(), pk = try await view.pk()
        var pending = PendingWrites(dimension: Self.dim, metric: .l2)
        var stepwise: HiddenRows?
        var rng = SplitMix64(seed: 147)
        for _ in 0..<200 {
            let key = [UInt64.random(in: 0..<3_000, using: &rng), UInt64.random(in: 5_000..<5_600, using: &rng),
                       UInt64.random(in: 9_000..<9_100, using: &rng)].randomElement(using: &rng)!  // the last kind is in no segment
            pending.touch(key, view: view)
            pending.delete(id: key)
            stepwise = HiddenRows.update(stepwise, view: view, live: live, pk: pk, pending: pending, flushing: nil)
        }
        let atOnce = HiddenRows.update(nil, view: view, live: live, pk: pk, pending: pending, flushing: nil)
        #expect(stepwise?.committed == atOnce.committed)
        // Every touched key's committed row is hidden; every other row stays.
        for (s, allowed) in atOnce.committed.enumerated() {
            let rows = Int(view.segments[s].ref.rowCount)
            let hidden = Set(pk!.entries.filter { pending.touched.contains($0.key) && Int($0.value.segment) == s }.map { Int($0.value.row) })
            #expect(!hidden.isEmpty, "segment \(s) hides none of 200 random keys")
            for row in 0..<rows { #expect((allowed?.contains(row) ?? true) == !hidden.contains(row)) }
        }
        // A new batch starts over: nothing of the old one is hidden.
        let fresh = PendingWrites(dimension: Self.dim, metric: .l2)
        let restarted = HiddenRows.update(stepwise, view: view, live: live, pk: pk, pending: fresh, flushing: nil)
        #expect(restarted.committed == live)
        try await db.close()
    }
}
