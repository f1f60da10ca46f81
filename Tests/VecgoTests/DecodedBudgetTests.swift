import Foundation
import Stores
import Testing
@testable import Vecgo

/// Decoded segment parts stay under the handle's byte budget, least recently used dropped first.
@Suite struct DecodedBudgetTests {
    /// A reader turns the pk-index into per-segment bitmaps of live rows and lets the index go;
    /// a writer keeps it for its next commit.
    @Test func readersKeepLiveBitmapsNotThePKIndex() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        for i in 0..<30 { try await w.upsert(id: UInt64(i), [Float(i), 0]) }
        try await w.commit()
        try await w.delete(id: 7)
        try await w.commit()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let ids = try await reader.search([7, 0], k: 3).map(\.id)
        #expect(!ids.contains(7) && ids.count == 3)
        #expect(await reader.view.holdsPKIndex == false)
        #expect(await w.view.holdsPKIndex == true)
        try await w.close()
    }

    @Test func leastRecentlyUsedPartsAreDroppedFirst() {
        let budget = DecodedBudget(capacity: 100)
        let dropped = Locked<[String]>([])
        func admit(_ k: String, _ n: Int) -> Bool { budget.admit(k, bytes: n) { dropped.withLock { $0.append(k) } } }
        #expect(admit("a", 40) && admit("b", 40))
        budget.touch("a")  // b is now the least recently used
        #expect(admit("c", 40))
        #expect(dropped.withLock { $0 } == ["b"])
        #expect(budget.bytes == 80)
        #expect(!admit("huge", 101), "a part larger than the budget must not be kept")
        #expect(budget.bytes == 80 && dropped.withLock { $0 } == ["b"])
        #expect(admit("d", 100))  // needs everything
        #expect(Set(dropped.withLock { $0 }) == ["a", "b", "c"])
        #expect(budget.bytes == 100)
    }

    /// Three graph segments searched under a budget that holds about one graph: the kept
    /// bytes never exceed it, and every answer equals that of an unbounded handle.
    @Test func searchesStayUnderTheBudgetAndAnswerTheSame() async throws {
        let store = MemoryBlobStore()
        let dim = 8
        let w = try await Vecgo.open(.remote(store), .create(dimension: dim, metric: .l2))
        var rng = SystemRandomNumberGenerator()
        for s in 0..<3 {
            for r in 0..<2_500 {
                try await w.upsert(id: UInt64(s * 10_000 + r), (0..<dim).map { _ in Float.random(in: 0..<1, using: &rng) },
                                   metadata: ["segment": .int(Int64(s))])
            }
            try await w.commit()
        }
        try await w.close()
        let unbounded = try await Vecgo.open(.remote(store), .readOnly)
        let queries = (0..<20).map { _ in (0..<dim).map { _ in Float.random(in: 0..<1, using: &rng) } }
        var expected: [[UInt64]] = []
        for q in queries { expected.append(try await unbounded.search(q, k: 10).map(\.id)) }
        let oneGraph = await unbounded.decodedBytes() / 3
        #expect(oneGraph > 0, "the unbounded handle kept nothing decoded: the test measures nothing")

        let budget = oneGraph * 3 / 2
        let bounded = try await Vecgo.open(.remote(store), .readOnly, .decodedCacheSize(budget))
        for (i, q) in queries.enumerated() {
            #expect(try await bounded.search(q, k: 10).map(\.id) == expected[i])
            #expect(await bounded.decodedBytes() <= budget)
        }
        // Filters decode metadata under the same budget.
        let filtered = try await bounded.search(queries[0], k: 5, filter: .equals("segment", .int(1)))
        #expect(filtered.count == 5 && filtered.allSatisfy { $0.id >= 10_000 && $0.id < 20_000 })
        #expect(await bounded.decodedBytes() <= budget)
        // A budget of nothing keeps nothing, and still answers.
        let none = try await Vecgo.open(.remote(store), .readOnly, .decodedCacheSize(0))
        #expect(try await none.search(queries[1], k: 10).map(\.id) == expected[1])
        #expect(await none.decodedBytes() == 0)
    }
}
