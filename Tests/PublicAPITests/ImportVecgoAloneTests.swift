// `import Vecgo` alone is all an application needs: this target depends on Vecgo only, imports
// nothing else and builds with MemberImportVisibility, so it compiles only while Vecgo exports
// the stores, options, errors, filters, results, metric, metadata values and tier counters (and
// their members). What is public, declaration by declaration, is recorded in api/*.txt.
import Testing
import Vecgo

@Suite struct ImportVecgoAloneTests {
    @Test func anApplicationWritesAndSearchesWithOnlyImportVecgo() async throws {
        // Stores, re-exported: configurations, credentials, the store protocol and its errors.
        let s3 = S3Configuration.minIO(endpoint: "http://127.0.0.1:9", bucket: "vectors", accessKey: "k", secretKey: "s")
        #expect(s3.bucket == "vectors" && s3.credentials.accessKeyID == "k")
        let missing = StoreError(.notFound, "no such object", object: "x")
        #expect(missing.code == .notFound)
        let store: any BlobStore = MemoryBlobStore()

        // The metric and metadata values of the layers below, with their members.
        #expect(Metric(name: "cosine") == .cosine)
        let db = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .blockCacheSize(1 << 20))
        #expect(db.metric == .l2)
        let meta: Metadata = ["n": MetadataValue.int(1)]
        let id = try await db.insert([1, 0], metadata: meta)
        _ = try await db.insert([0, 1], metadata: ["n": .int(2)])
        try await db.commit()

        let hits: [SearchResult] = try await db.search([1, 0], k: 2, filter: .equals("n", .int(1)), include: [.metadata],
                                                       options: SearchOptions(ef: 32))
        #expect(hits.map(\.id) == [id] && hits.first?.metadata?["n"] == .int(1))
        let (_, stats): ([SearchResult], QueryStats) = try await db.searchWithStats([0, 1], k: 1)
        let counters: TierCounters = await db.tierCounters()
        #expect(counters.remoteRequests >= stats.tiers.remoteRequests)
        #expect(counters.remoteLatency.count >= 0)

        let refused = await #expect(throws: VecgoError.self) { try await db.insert([1, 2, 3]) }
        #expect(refused?.code == .dimensionMismatch)
        try await db.close()
    }
}
