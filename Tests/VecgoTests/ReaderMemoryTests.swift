// A reader that follows new versions keeps memory for its current version only: decoded parts,
// segment readers and views of segments and versions it moved past are let go.
import Foundation
import Stores
import Testing
@testable import Vecgo

@Suite struct ReaderMemoryTests {
    /// Six small flat segments, searched (flat rows and metadata decoded), then compacted into
    /// one: after the reader refreshes, no decoded part, reader or view of the replaced
    /// segments and version is held, and what it decodes next is that of the one segment.
    @Test func refreshLetsGoOfReplacedSegments() async throws {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2))
        for s in 0..<6 {
            for r in 0..<20 {
                try await w.upsert(id: UInt64(s * 100 + r), [Float(s), Float(r), 0, 1], metadata: ["s": .int(Int64(s))])
            }
            try await w.commit()
        }
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let hits = try await reader.search([0, 0, 0, 1], k: 5, filter: .equals("s", .int(2)), include: [.metadata])
        #expect(hits.count == 5 && hits.allSatisfy { $0.id >= 200 && $0.id < 300 })
        #expect(try await reader.search([0, 0, 0, 1], k: 5).count == 5)  // every segment's flat rows too
        let oldView = Weak<VersionView>(), oldReader = Weak<SegmentReader>()
        let budget: DecodedBudget
        do {
            let before = await reader.view
            budget = try #require(before.budget)
            #expect(before.segments.count == 6)
            #expect(budget.count == 12, "flat rows and metadata of six segments are kept: \(budget.count) parts")
            await before.settle()
            #expect(before.segments.allSatisfy { !$0.holdsTasks }, "finished reads are held as tasks, not as what they read")
            oldView.value = before
            oldReader.value = before.segments[0]
        }

        let report = try await w.compact()
        #expect(report.version != nil)
        #expect(await w.versionInfo.segments == 1)
        try await reader.refresh()
        #expect(await reader.view.segments.count == 1)
        #expect(budget.count == 0 && budget.bytes == 0,
                "parts of segments the version no longer has are still kept: \(budget.count) parts, \(budget.bytes) bytes")
        await reader.view.settle()
        #expect(oldView.value == nil, "the replaced version's view is still alive")
        #expect(oldReader.value == nil, "a replaced segment's reader is still alive")

        let again = try await reader.search([0, 0, 0, 1], k: 5, filter: .equals("s", .int(2)), include: [.metadata])
        #expect(again.map(\.id) == hits.map(\.id))
        #expect(budget.count == 2, "flat rows and metadata of the one segment: \(budget.count) parts")
        try await reader.close()
        try await w.close()
    }
}

/// A weak reference, to tell whether anything else still holds an object.
final class Weak<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
}
