// A store wrapper that counts the bytes written through it: the "uploaded" figure of
// `vecgo import`'s progress line.
import Stores
import Synchronization

/// Forwards every call to `inner` and counts the bytes of each successful put.
class UploadCountingStore: BlobStore, @unchecked Sendable {
    let inner: any BlobStore
    private let written = Atomic<Int>(0)

    /// Bytes written so far.
    var bytesWritten: Int { written.load(ordering: .relaxed) }

    /// Wraps `store`, keeping it a ``VersionedBlobStore`` (DynamoDB commits) when it is one.
    static func wrapping(_ store: any BlobStore) -> UploadCountingStore {
        if let versioned = store as? any VersionedBlobStore { return VersionedUploadCountingStore(versioned) }
        return UploadCountingStore(store)
    }

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
}

/// The counting wrapper of a store that commits through DynamoDB: the newest version still
/// comes from the table.
final class VersionedUploadCountingStore: UploadCountingStore, VersionedBlobStore, @unchecked Sendable {
    private let versioned: any VersionedBlobStore
    init(_ versioned: any VersionedBlobStore) {
        self.versioned = versioned
        super.init(versioned)
    }
    func latestVersion() async throws -> UInt64? { try await versioned.latestVersion() }
}
