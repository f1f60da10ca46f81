// The CommitStore contract of ConditionalPutCommitStore over the local stores (memory and a
// directory: the local commit store is this one type) and the default commit store of a store.
import Foundation
import SegmentFormat
import Stores
import Testing

@Suite struct CommitStoreTests {
    /// A fresh directory under the system's temporary directory.
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "vecgo-commitstore-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Each version is committed once; a lost race is `.alreadyExists`; the manifest objects
    /// are the only record (`.askObjects`), and a committed manifest reads back.
    func checkContract(_ objects: any BlobStore) async throws {
        let c = ConditionalPutCommitStore(objects: objects)
        #expect(try await c.latest() == .askObjects)
        #expect(try await c.committedManifest(version: 1, name: Manifest.objectName(version: 1)) == nil)
        try await c.commit(version: 1, manifest: Manifest.objectName(version: 1), [1])
        let lost = await #expect(throws: StoreError.self) {
            try await c.commit(version: 1, manifest: Manifest.objectName(version: 1), [2])
        }
        #expect(lost?.code == .alreadyExists)
        #expect(try await c.committedManifest(version: 1, name: Manifest.objectName(version: 1)) == [1])
        #expect(try await objects.read(Manifest.objectName(version: 1)) == [1])  // the first commit stands
        // Many writers racing for one version: exactly one wins, the others are told they lost.
        let outcomes = await withTaskGroup(of: StoreError.Code?.self) { g in
            for i in 0..<16 {
                g.addTask {
                    do {
                        try await c.commit(version: 2, manifest: Manifest.objectName(version: 2), [UInt8(i)])
                        return nil
                    } catch let e as StoreError { return e.code } catch { return .network }
                }
            }
            return await g.reduce(into: [StoreError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.filter { $0 == .alreadyExists }.count == 15)
        #expect(try await c.latest() == .askObjects)  // still: no record apart from the objects
    }

    @Test func conditionalPutOverMemoryDecidesEachVersionOnce() async throws {
        try await checkContract(MemoryBlobStore())
    }

    /// The local case: a directory's create-if-absent (`link`, fsync) is its commit point.
    @Test func conditionalPutOverALocalDirectoryDecidesEachVersionOnce() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await checkContract(try LocalDirectoryStore(root: dir))
    }

    /// A store's default commit store is a conditional put on that very store.
    @Test func aStoresDefaultCommitStoreIsAConditionalPutOnItself() async throws {
        let objects = MemoryBlobStore()
        try await objects.commitStore.commit(version: 1, manifest: Manifest.objectName(version: 1), [7])
        #expect(try await objects.read(Manifest.objectName(version: 1)) == [7])
        #expect(try await objects.commitStore.latest() == .askObjects)
        #expect("\(objects.commitStore)".hasPrefix("ConditionalPutCommitStore("))
    }
}
