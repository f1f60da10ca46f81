import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// What a cold query costs in bytes: codes of the probed partitions and a few exact vectors,
/// each fetched as the pages it covers.
@Suite struct ColdBytesTests {
    /// A cold query fetches the probed partitions' codes and a few exact vectors (a 4 KiB page
    /// each): at 256 dimensions, under half the bytes of the same partitions' exact vectors (a toy size:
    /// the 64 KiB coalescing gap spans several partitions here; `vecgo-bench scale` measures real ones).
    @Test func aColdQueryReadsCodesAndAFewVectors() async throws {
        let (store, _) = try await CodesTests.database(rows: 3_000, dim: 256)
        let q = SegmentLayoutEngineTests.clustered(1, 256, seed: 62)[0]
        func coldBytes(_ scan: CodeScan) async throws -> Int {
            let r = try await Vecgo.open(.remote(store), .readOnly)
            _ = try await r.search(q, k: 10, options: SearchOptions(nprobe: 1))  // reads the tail
            let (_, stats) = try await r.searchWithStats(q, k: 10, options: SearchOptions(nprobe: 16, scan: scan, rerank: 20))
            try await r.close()
            return stats.tiers.remoteBytes
        }
        let exact = try await coldBytes(.exact), binary = try await coldBytes(.binary), sq8 = try await coldBytes(.sq8)
        #expect(binary > 0 && sq8 > 0)
        #expect(binary * 2 < exact, "1-bit scan read \(binary) bytes, exact \(exact)")
        #expect(sq8 < exact, "SQ8 scan read \(sq8) bytes, exact \(exact)")
    }


    /// The disk cache keeps the pages a query fetched (sparse block files): a restarted reader
    /// repeats the query with no read but the listing that finds the newest version (and the
    /// size probe that confirms no newer one exists, which the counters leave out).
    @Test func aRestartedReaderRepeatsAQueryFromDisk() async throws {
        let (store, _) = try await CodesTests.database(rows: 3_000, dim: 64)
        let cache = FileManager.default.temporaryDirectory.path + "/vecgo-coldbytes-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let q = SegmentLayoutEngineTests.clustered(1, 64, seed: 65)[0]
        let first = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cache))
        let before = try await first.search(q, k: 10, include: [.vector])
        #expect(await first.tierCounters().remoteRequests > 2)
        try await first.close()
        let restarted = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cache))
        let after = try await restarted.search(q, k: 10, include: [.vector])
        let counters = await restarted.tierCounters()
        #expect(after == before)
        #expect(counters.remoteRequests == 1, "\(counters.remoteRequests) requests: only the listing should go to the store (and an uncounted size probe)")
        #expect(counters.diskHits > 0)
        try await restarted.close()
    }
}
