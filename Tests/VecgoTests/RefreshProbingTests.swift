import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// A handle that knows a version finds newer ones by probing manifest names, not by listing.
@Suite struct RefreshProbingTests {
    @Test func refreshProbesForwardAndListsOnlyWhenItsVersionIsGone() async throws {
        let lists = Locked(0)
        let store = InterceptingStore(onList: { listing in
            lists.withLock { $0 += 1 }
            return listing
        })
        let writer = try await Vecgo.open(.remote(store), .create(dimension: 2, metric: .l2), .maxCommitObjectAge(0.05))
        try await writer.upsert(id: 1, [1, 1])
        try await writer.commit()
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let opened = await reader.version
        lists.withLock { $0 = 0 }

        #expect(try await reader.refresh() == opened)  // nothing new
        for i in 2...12 {  // eleven new versions: found by galloping and bisecting
            try await writer.upsert(id: UInt64(i), [Float(i), 1])
            try await writer.commit()
        }
        let newest = await writer.version
        #expect(try await reader.refresh() == newest)
        #expect(try await reader.search([5, 1], k: 1).first?.id == 5)
        #expect(lists.withLock { $0 } == 0, "refresh listed although it knew a version")

        // Vacuum removes the reader's version and the next: it falls back to one listing.
        for id: UInt64 in [98, 99] {
            try await Task.sleep(nanoseconds: 150_000_000)
            try await writer.upsert(id: id, [9, 9])
            try await writer.commit()
        }
        let report = try await writer.vacuum(retainVersions: 1, gracePeriod: 0.1)
        #expect(report.manifestsDeleted >= newest + 1 - 1, "vacuum kept versions the test needs gone: \(report)")
        lists.withLock { $0 = 0 }
        #expect(try await reader.refresh() == newest + 2)
        #expect(lists.withLock { $0 } == 1)
        try await writer.close()
    }
}
