// Tests of dropping bytes that failed a check from every tier (CachingStore.invalidate and
// readChecked), including a GET that was in flight when its object was invalidated.
import Foundation
import Stores
import Testing
@testable import Tiering

@Suite struct HealingTests {
    struct Damaged: Error {}

    /// Invalidating a range drops its pages from RAM and its blocks from the disk cache: the
    /// next read goes to the store.
    @Test func invalidateDropsPagesFromEveryTier() async throws {
        let dir = temporaryDirectory("invalidate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(64 * KiB)
        let (store, remote) = try await PageFetchTests.makeStore(object, diskDirectory: dir)
        _ = try await store.read("obj", range: 5000..<9000)
        await store.disk!.flush()
        #expect(store.disk!.get(BlockKey(object: "obj", index: 0), pages: [1, 2]).count == 2)
        store.invalidate("obj", range: 5000..<9000)
        #expect(store.ram.peek(BlockKey(object: "obj", index: 1)) == nil)
        #expect(store.disk!.get(BlockKey(object: "obj", index: 0), pages: [1, 2]).isEmpty)
        remote.reset()
        #expect(try await store.read("obj", range: 5000..<9000) == PageFetchTests.slice(object, 5000..<9000))
        #expect(remote.ranges.count == 1)
    }

    /// A GET in flight when its object is invalidated answers its reader but puts nothing into
    /// RAM or the disk cache.
    @Test func aFetchInFlightDuringAnInvalidationKeepsNothing() async throws {
        let dir = temporaryDirectory("inflight")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let object = pattern(64 * KiB)
        let (store, remote) = try await PageFetchTests.makeStore(object, diskDirectory: dir, delayMillis: 300)
        let reading = Task { try await store.read("obj", range: 0..<8192) }
        while remote.ranges.isEmpty { try await Task.sleep(nanoseconds: 1_000_000) }  // the GET is under way
        store.invalidate("obj", range: 0..<8192)
        #expect(try await reading.value == PageFetchTests.slice(object, 0..<8192))
        await store.disk!.flush()
        #expect(store.ram.peek(BlockKey(object: "obj", index: 0)) == nil)
        #expect(store.disk!.get(BlockKey(object: "obj", index: 0), pages: [0, 1]).isEmpty)
    }

    /// A check failing on cached bytes: dropped, read once more from the store (bypassing the
    /// tiers), and the good bytes cached again; a check failing on the store's bytes too throws.
    @Test func readCheckedReadsAgainFromTheStoreOnce() async throws {
        let object = pattern(16 * KiB)
        let (store, remote) = try await PageFetchTests.makeStore(object)
        // Damage the RAM page as a flipped byte in transit would have.
        _ = try await store.read("obj", range: 0..<4096)
        var bad = PageFetchTests.slice(object, 0..<4096)
        bad[10] ^= 1
        store.ram.put(BlockKey(object: "obj", index: 0), bad)
        remote.reset()
        let good = PageFetchTests.slice(object, 0..<4096)
        let got = try await store.readChecked("obj", ranges: [0..<4096]) { parts in
            guard parts[0] == good else { throw Damaged() }
            return parts[0]
        }
        #expect(got == good)
        #expect(remote.ranges == [0..<4096])
        #expect(store.ram.peek(BlockKey(object: "obj", index: 0)) == good)
        #expect(store.stats.snapshot().healed == 1)
        remote.reset()
        await #expect(throws: Damaged.self) {
            _ = try await store.readChecked("obj", ranges: [0..<4096]) { _ in throw Damaged() }
        }
        #expect(remote.ranges == [0..<4096], "one read from the store, not more")
    }
}
