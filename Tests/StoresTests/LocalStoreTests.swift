import Foundation
@_spi(Testing) import Stores
import Testing

/// The contract every BlobStore keeps, run against the memory and local-directory stores.
@Suite struct BlobStoreContractTests {
    static func stores() throws -> [any BlobStore] {
        [MemoryBlobStore(), try LocalDirectoryStore(root: FileManager.default.temporaryDirectory.path + "/vecgo-local-\(UUID().uuidString)")]
    }

    @Test func contract() async throws {
        for store in try Self.stores() {
            try await store.put("a/one", [1, 2, 3, 4, 5])
            #expect(try await store.read("a/one") == [1, 2, 3, 4, 5])
            #expect(try await store.read("a/one", range: 1..<3) == [2, 3])
            #expect(try await store.read("a/one", range: 3..<100) == [4, 5])
            #expect(try await store.read("a/one", range: 9..<100) == [])
            #expect(try await store.size("a/one") == 5)
            try await store.putIfAbsent("a/two", [9])
            await #expect(throws: StoreError.self) { try await store.putIfAbsent("a/two", [8]) }
            #expect(try await store.read("a/two") == [9])
            try await store.put("b", [])
            #expect(try await store.list(prefix: "a/").map(\.name) == ["a/one", "a/two"])
            #expect(try await store.list(prefix: "", startAfter: "a/one").map(\.name) == ["a/two", "b"])
            try await store.delete("a/one")
            try await store.delete("a/one")
            do {
                _ = try await store.read("a/one")
                Issue.record("read a deleted object")
            } catch let e as StoreError {
                #expect(e.code == .notFound)
            }
            for bad in ["", "/abs", "../escape", "a/../b"] {
                await #expect(throws: StoreError.self, "\(bad)") { try await store.put(bad, [1]) }
            }
        }
    }

    @Test func racingCreatesHaveExactlyOneWinner() async throws {
        for store in try Self.stores() {
            let wins = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<16 {
                    group.addTask { (try? await store.putIfAbsent("MANIFEST-x", [UInt8(i)])) != nil }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
        }
    }
}

/// A failed fsync is an error, not a silent loss of durability (issue 15, part 7).
@Suite struct LocalStoreFsyncTests {
    /// An fsync that fails with EIO on directories (`failDirectories`) or on files.
    static func failingSync(failDirectories: Bool) -> @Sendable (Int32) -> Int32 {
        { fd in
            var st = stat()
            guard fstat(fd, &st) == 0 else { return -1 }
            if ((st.st_mode & S_IFMT) == S_IFDIR) == failDirectories {
                errno = EIO
                return -1
            }
            return fsync(fd)
        }
    }

    static func root() -> String { FileManager.default.temporaryDirectory.path + "/vecgo-fsync-\(UUID().uuidString)" }

    @Test func aFailedDirectoryFsyncFailsPutAndPutIfAbsent() async throws {
        let store = try LocalDirectoryStore(root: Self.root(), fsync: Self.failingSync(failDirectories: true))
        let e = await #expect(throws: StoreError.self) { try await store.put("segment_1.bin", [1, 2, 3]) }
        #expect(e?.code == .io)
        #expect(e?.message.contains("fsync") == true, "\(String(describing: e))")
        let c = await #expect(throws: StoreError.self) { try await store.putIfAbsent("MANIFEST-1.bin", [4]) }
        #expect(c?.code == .io)
    }

    @Test func aFailedFileFsyncFailsThePutAndLeavesNoObject() async throws {
        let store = try LocalDirectoryStore(root: Self.root(), fsync: Self.failingSync(failDirectories: false))
        let e = await #expect(throws: StoreError.self) { try await store.put("segment_1.bin", [1, 2, 3]) }
        #expect(e?.code == .io)
        #expect(try await store.list(prefix: "").isEmpty)
        let plain = try LocalDirectoryStore(root: store.root)
        try await plain.put("segment_1.bin", [1, 2, 3])
        #expect(try await plain.read("segment_1.bin") == [1, 2, 3])
    }
}
