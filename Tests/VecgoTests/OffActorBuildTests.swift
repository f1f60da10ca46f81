// Nothing heavy on the actor (issue 12, part 3): a segment build (a commit's, a spill's) runs off
// the handle's actor and holds nothing a search waits for, so searches on the handle go on while
// it runs; and a memtable's lazily built graph stays right when copies of the table race.
import Dispatch
import Foundation
import IndexCore
import Stores
import Synchronization
import Testing
@testable import Vecgo
import _VecgoTestSupport

/// Serialized: each test holds a build for a while (on its background thread, see
/// `Background`), and one at a time keeps their bounded waits apart.
@Suite(.serialized) struct OffActorBuildTests {
    static let dim = 8
    /// Rows pending before the build: a graph segment (2 000 rows or more, under the IVF
    /// thresholds), and enough rows for a search (ef 64) to choose the memtable's graph over a scan.
    static let rows = 5_000
    /// The graph row at which the test holds the build.
    static let holdAt = 1_000

    /// Holds a segment build when it adds graph row `holdAt`, until released. Every wait is
    /// bounded, so a test that finds the search stuck fails instead of hanging.
    final class Gate: Sendable {
        let reached = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        var hook: @Sendable (Int) -> Void {
            { row in
                guard row == OffActorBuildTests.holdAt else { return }
                self.reached.signal()
                _ = self.release.wait(timeout: .now() + 60)  // the bound that unsticks a stuck test
            }
        }

        /// Waits (off the concurrency pool) until the build is held.
        func waitUntilHeld() async throws -> Bool {
            try await offThePool { self.reached.wait(timeout: .now() + 60) == .success }
        }
    }

    /// Runs `search` while the build is held; returns its result, or nil when it did not finish
    /// before the bounded wait ran out. Releases the build either way.
    static func searchWhileHeld(_ gate: Gate, _ search: @escaping @Sendable () async throws -> [SearchResult]) async throws -> [SearchResult]? {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<[SearchResult]?>(nil)
        Task {
            let r = try? await search()
            result.withLock { $0 = r }
            done.signal()
        }
        let finished = try await offThePool { done.wait(timeout: .now() + 30) == .success }
        gate.release.signal()
        return finished ? result.withLock { $0 } : nil
    }

    @Test func aSearchFinishesWhileTheCommitsSegmentBuildRuns() async throws {
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2))
        let data = SegmentLayoutEngineTests.clustered(Self.rows, Self.dim, seed: 121)
        for (i, v) in data.enumerated() { try await db.upsert(id: UInt64(i), v) }  // no search yet: no graph
        let gate = Gate()
        await db.setSegmentBuildHook(gate.hook)
        let commit = Task { try await db.commit() }
        #expect(try await gate.waitUntilHeld(), "the commit's segment build never reached graph row \(Self.holdAt)")
        // Rows the held build has put in the graph, and rows it has not reached.
        let early = data[10], late = data[4_500]
        let hits = try await Self.searchWhileHeld(gate) {
            try await db.search(early, k: 3) + db.search(late, k: 3)
        }
        guard let hits else {
            Issue.record("a search on the handle did not finish while its commit's segment build was held at graph row \(Self.holdAt): the build blocks searches")
            _ = try? await commit.value
            return
        }
        #expect(hits.count == 6)
        #expect(hits.first?.id == 10 && hits.first?.distance == 0, "\(hits.prefix(3))")
        #expect(hits.dropFirst(3).first?.id == 4_500 && hits.dropFirst(3).first?.distance == 0, "\(hits.suffix(3))")
        #expect(try await commit.value == 1)
        #expect(try await db.search(late, k: 1).first?.id == 4_500)
        try await db.close()
    }

    @Test func aSearchFinishesWhilePendingRowsAreWrittenOut() async throws {
        // Pending rows are written out when they reach `rows`: a graph segment.
        let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: Self.dim, metric: .l2),
                                      .maxSegmentBytes(Self.rows * Self.dim * 4))
        let data = SegmentLayoutEngineTests.clustered(Self.rows, Self.dim, seed: 122)
        for (i, v) in data.dropLast().enumerated() { try await db.upsert(id: UInt64(i), v) }
        let gate = Gate()
        await db.setSegmentBuildHook(gate.hook)
        let write = Task { try await db.upsert(id: 4_999, data[4_999]) }  // crosses the limit: waits for the spill
        #expect(try await gate.waitUntilHeld(), "the spill's segment build never reached graph row \(Self.holdAt)")
        let hits = try await Self.searchWhileHeld(gate) { try await db.search(data[4_500], k: 2) }
        guard let hits else {
            Issue.record("a search on the handle did not finish while pending rows were being written out (build held at graph row \(Self.holdAt))")
            _ = try? await write.value
            return
        }
        #expect(hits.first?.id == 4_500 && hits.first?.distance == 0, "\(hits)")
        try await write.value
        #expect(await db.pendingCount == Self.rows)
        #expect(try await db.search(data[4_999], k: 1).first?.id == 4_999)
        #expect(try await db.commit() == 1)
        try await db.close()
    }

    /// A copy of a table taken before a delete, catching the graph up after it, must not put the
    /// deleted row in alive (searches run off the actor on copies of the table).
    @Test func aStaleCopyCatchingUpKeepsARowDeletedSinceDead() {
        let data = SegmentLayoutEngineTests.clustered(Memtable.exactBelow + 100, Self.dim, seed: 123)
        var table = Memtable(dimension: Self.dim, metric: .l2)
        for (i, v) in data.enumerated() { table.put(id: UInt64(i), vector: v, metadata: [:], payload: []) }
        let stale = table  // a search's copy
        let removed = table.remove(id: 7)  // the graph holds no row yet
        #expect(removed)
        _ = stale.indexedGraph()  // the stale copy builds the graph: row 7 is live in it
        // ef 8: the graph, not a scan (the planner scans when that costs less).
        let hits = table.search(data[7], k: 3, ef: 8, filter: nil)
        #expect(hits.count == 3)
        #expect(!hits.contains { $0.id == 7 }, "the deleted row came back: \(hits)")
    }

    /// A search never builds a large graph itself: past `inlineRows` missing rows it is handed
    /// the graph as it stands, starts a background catch-up, and scans the rest; the catch-up
    /// then completes the graph; a few missing rows are added inline.
    @Test func aSearchLeavesALargeGraphBuildToTheBackground() async throws {
        let data = SegmentLayoutEngineTests.clustered(3_000, Self.dim, seed: 124)
        var table = Memtable(dimension: Self.dim, metric: .l2)
        for (i, v) in data.enumerated() { table.put(id: UInt64(i), vector: v, metadata: [:], payload: []) }
        let first = table.graph.forSearch(table)
        #expect(first.rows == 0, "the search was handed a graph of \(first.rows) rows: it built them itself")
        let hits = table.search(data[2_500], k: 3, ef: 16, filter: nil)  // exact meanwhile: graph part plus scan
        #expect(hits.first?.id == 2_500 && hits.first?.distance == 0, "\(hits)")
        // The background catch-up completes the graph (a bounded wait: it runs niced, not timed).
        let deadline = ContinuousClock.now + .seconds(120)
        while table.graph.builtRows < table.count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(table.graph.builtRows == table.count, "the background catch-up stopped at \(table.graph.builtRows) of \(table.count) rows")
        // A few new rows: the search adds them itself.
        for (i, v) in SegmentLayoutEngineTests.clustered(LazyGraph.inlineRows, Self.dim, seed: 125).enumerated() {
            table.put(id: UInt64(10_000 + i), vector: v, metadata: [:], payload: [])
        }
        #expect(table.graph.forSearch(table).rows == table.count)
        #expect(table.graph.builtRows == table.count)
    }

    /// A retired table (committed, written out, discarded) starts no background catch-up; a
    /// segment build still gets its whole graph.
    @Test func aRetiredTableStartsNoCatchUpButASegmentBuildCompletesItsGraph() {
        let data = SegmentLayoutEngineTests.clustered(2_000, Self.dim, seed: 126)
        var table = Memtable(dimension: Self.dim, metric: .l2)
        for (i, v) in data.enumerated() { table.put(id: UInt64(i), vector: v, metadata: [:], payload: []) }
        table.graph.retire()
        #expect(table.graph.forSearch(table).rows == 0)
        let hits = table.search(data[1_999], k: 1, ef: 16, filter: nil)
        #expect(hits.first?.id == 1_999 && hits.first?.distance == 0)
        #expect(table.graph.builtRows == 0, "a retired table's graph grew to \(table.graph.builtRows) rows")
        let (contents, _) = table.contents(.graph)
        #expect(table.graph.builtRows == table.count)
        #expect(contents.graph != nil)
    }
}
