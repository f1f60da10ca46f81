// A store wrapper that counts the bytes written through it: the "uploaded" figure of
// `vecgo import`'s progress line.
import Stores
import Synchronization

/// Forwards every call to `inner` and counts the bytes of each successful put.
final class UploadCountingStore: BlobStore, @unchecked Sendable {
    let inner: any BlobStore
    private let written = Atomic<Int>(0)

    /// Bytes written so far.
    var bytesWritten: Int { written.load(ordering: .relaxed) }

    /// Wraps `store`.
    static func wrapping(_ store: any BlobStore) -> UploadCountingStore { UploadCountingStore(store) }

    init(_ inner: any BlobStore) { self.inner = inner }

    func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] { try await inner.read(name, range: range) }
    func read(_ name: String) async throws -> [UInt8] { try await inner.read(name) }
    func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]] { try await inner.read(name, ranges: ranges) }
    func put(_ name: String, _ bytes: [UInt8]) async throws {
        try await inner.put(name, bytes)
        written.add(bytes.count, ordering: .relaxed)
    }
    func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        try await inner.putIfAbsent(name, bytes)
        written.add(bytes.count, ordering: .relaxed)
    }
    func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix, startAfter: startAfter) }
    func delete(_ name: String) async throws { try await inner.delete(name) }
    func size(_ name: String) async throws -> UInt64 { try await inner.size(name) }
    /// `inner`'s commit store (a DynamoDB table stays the one deciding versions); the manifest
    /// bytes it writes are not counted.
    var commitStore: any CommitStore { inner.commitStore }
}

