// A LIST answer is only a start (issue 15, part 2): damaged, stale or failed listings never open an older version.
import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// A listing only says where to start looking for the newest version: one that misses or
/// garbles the newest manifests never makes a reader open an older version.
@Suite struct ListingTrustTests {
    enum Damage: Sendable, CaseIterable { case dropsTheNewest, garblesTheNewest, garblesEverything, staleByThree }

    @Test(arguments: Damage.allCases)
    func aDamagedListingNeverHidesNewerVersions(damage: Damage) async throws {
        let memory = MemoryBlobStore()
        let writer = try await Vecgo.open(.remote(memory), .create(dimension: 2, metric: .l2))
        for i in 1...6 {
            try await writer.upsert(id: UInt64(i), [Float(i), 1])
            try await writer.commit()
        }
        let newest = await writer.version
        let store = InterceptingStore(memory, onList: { listing in
            var l = listing.filter { $0.name.hasPrefix("MANIFEST-") }
            switch damage {
            case .dropsTheNewest: l.removeLast()
            case .garblesTheNewest: l[l.count - 1].name = "MANIFEST-0000000000000000000?.bin"
            case .garblesEverything: l = l.map { ObjectInfo(name: $0.name + "~", size: $0.size) }
            case .staleByThree: l.removeLast(3)
            }
            return l
        })
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        let opened = await reader.version
        #expect(opened == newest, "\(damage): opened version \(opened) of \(newest)")
        #expect(try await reader.search([6, 1], k: 1).first?.id == 6)
    }

    @Test func aListingThatFailsIsReportedAsAListing() async throws {
        let store = InterceptingStore(onList: { _ in [] })
        let failing = FailingListStore(store)
        do {
            _ = try await Vecgo.open(.remote(failing), .readOnly)
            Issue.record("an open whose listing failed succeeded")
        } catch let e as VecgoError {
            #expect(e.message.contains("listing MANIFEST-"), "\(e.message)")
        }
    }
}

/// Every listing fails with a network error.
final class FailingListStore: BlobStore {
    let base: any BlobStore
    init(_ base: any BlobStore) { self.base = base }
    func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] { try await base.read(name, range: range) }
    func put(_ name: String, _ bytes: [UInt8]) async throws { try await base.put(name, bytes) }
    func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws { try await base.putIfAbsent(name, bytes) }
    func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        throw StoreError(.network, "injected: the listing failed")
    }
    func delete(_ name: String) async throws { try await base.delete(name) }
    func size(_ name: String) async throws -> UInt64 { try await base.size(name) }
}
