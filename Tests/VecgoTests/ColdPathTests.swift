import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// The cold-path budget of the design brief: opening a reader costs at most 2 sequential round
/// trips, and its first query at most 3 more, whatever the segment layouts: the tails (started
/// at open), then an IVF segment's codes, then the exact vectors of the rows it re-ranks.
@Suite struct ColdPathTests {
    static func database() async throws -> MemoryBlobStore {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 8, metric: .l2), .ivfThreshold(1500))
        let data = SegmentLayoutEngineTests.clustered(5600, 8, seed: 40)
        for (i, v) in data.enumerated() {
            try await w.insert(v)
            if i == 99 || i == 2599 { try await w.commit() }  // flat (100 rows), graph (2500), IVF (3000)
        }
        try await w.close()
        return store
    }

    @Test func openAndFirstQueryStayWithinTheRoundTripBudget() async throws {
        let recorder = RoundTripRecorder(try await Self.database())
        let reader = try await Vecgo.open(.remote(recorder), .readOnly)
        #expect(recorder.depth <= 2, "open took \(recorder.depth) sequential round trips")
        let afterOpen = recorder.depth
        // Not reset here: the tails prefetched at open are still in flight and count toward the
        // first query's budget (they may even have brought everything it needs).
        let (hits, _) = try await reader.searchWithStats(SegmentLayoutEngineTests.clustered(1, 8, seed: 41)[0], k: 10)
        #expect(hits.count == 10)
        #expect(recorder.depth - afterOpen <= 3,
                "the first query took \(recorder.depth - afterOpen) sequential round trips after open")
        // Warm: the same query again makes no request at all, and its own counters say so.
        recorder.reset()
        let (_, warm) = try await reader.searchWithStats(SegmentLayoutEngineTests.clustered(1, 8, seed: 41)[0], k: 10)
        #expect(recorder.requests == 0)
        #expect(warm.tiers.remoteRequests == 0)
        #expect(warm.tiers.ramHits > 0)
    }

    @Test func warmLoadsChosenSegmentsOrAllSoQueriesMakeNoRequests() async throws {
        let recorder = RoundTripRecorder(try await Self.database(), delayMillis: 0)
        let reader = try await Vecgo.open(.remote(recorder), .readOnly)
        let names = await reader.segmentNames
        #expect(names.count == 3)
        await #expect(throws: VecgoError.self) { try await reader.warm(segments: ["segment_nope.bin"]) }
        let one = try await reader.warm(segments: [names[0]])
        let all = try await reader.warm()
        #expect(one > 0 && all > one)
        recorder.reset()
        for seed in 50..<55 {
            let (hits, stats) = try await reader.searchWithStats(SegmentLayoutEngineTests.clustered(1, 8, seed: UInt64(seed))[0],
                                                                 k: 10, options: SearchOptions(nprobe: 64))
            #expect(hits.count == 10)
            #expect(stats.tiers.remoteRequests == 0)
        }
        #expect(recorder.requests == 0)
    }
}
