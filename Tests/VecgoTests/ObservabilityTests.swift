// The library's log lines: commits and their conflicts, background refresh failures (never
// swallowed), vacuum deletions.
import Foundation
import Logging
import Stores
import Synchronization
import Testing
import Vecgo
import _VecgoTestSupport

@Suite struct ObservabilityTests {
    @Test func aFailedBackgroundRefreshIsLoggedAndTheReaderKeepsItsVersion() async throws {
        let failReads = Atomic<Bool>(false)
        let store = InterceptingStore(MemoryBlobStore(), onRead: { name in
            if failReads.load(ordering: .relaxed), name.hasPrefix("MANIFEST-") {
                throw StoreError(.network, "injected failure reading \(name)")
            }
        })
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2))
        try await w.upsert(id: 1, [1, 0])
        try await w.commit()
        let logs = LogCapture()
        let r = try await Vecgo.open(.remote(store), .readOnly, .refreshInterval(0.02), .logger(logs.logger))
        failReads.store(true, ordering: .relaxed)
        try await w.upsert(id: 2, [0, 1])
        try await w.commit()
        var waited = 0
        while logs.warnings(containing: "background refresh failed").isEmpty && waited < 2_000 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        let lines = logs.warnings(containing: "background refresh failed")
        #expect(!lines.isEmpty)
        #expect(lines.first?.contains("code=unavailable") == true, "\(lines)")
        #expect(await r.version == 1)
        failReads.store(false, ordering: .relaxed)
        try await r.close()
        try await w.close()
    }

    @Test func commitsAndTheirConflictsAreLogged() async throws {
        let store = MemoryBlobStore()
        let logs = LogCapture()
        let a = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .logger(logs.logger))
        try await a.upsert(id: 1, [1, 0])
        try await a.commit()
        let b = try await Vecgo.open(.remote(store), .logger(logs.logger))
        try await a.upsert(id: 1, [2, 0])
        try await b.upsert(id: 1, [3, 0])
        try await a.commit()
        await #expect(throws: VecgoError.self) { try await b.commit() }
        let committed = logs.all.filter { $0.level == .info && $0.message.hasPrefix("committed") }
        #expect(committed.count == 2, "\(committed.map(\.message))")
        #expect(committed.first?.message.contains("version=1") == true)
        #expect(logs.warnings(containing: "commit failed").contains { $0.contains("code=conflict") },
                "\(logs.all.map(\.message))")
        _ = try await b.discardPending()
        try await b.close()
        try await a.close()
    }

    @Test func vacuumLogsWhatItDeletes() async throws {
        let store = MemoryBlobStore()
        let logs = LogCapture()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .logger(logs.logger),
                                     .maxCommitObjectAge(0.001))
        for i in 0..<3 {
            try await w.upsert(id: 1, [Float(i), 0])
            try await w.commit()
        }
        let report = try await w.vacuum(retainVersions: 1, gracePeriod: 0.001)
        #expect(report.manifestsDeleted >= 1)
        let deleted = logs.all.filter { $0.message.hasPrefix("vacuum deleted an object") }
        #expect(deleted.count == report.manifestsDeleted + report.objectsDeleted)
        #expect(logs.all.contains { $0.level == .info && $0.message.hasPrefix("vacuumed") })
        try await w.close()
    }
}
