// BlobStore: the protocol every object store implements (read, put, put-if-absent, list,
// delete, size; checked reads and the commit store, with defaults), and ObjectInfo.
public import Foundation

/// An object store holding immutable, named blobs: the only source of truth of a Vecgo database.
///
/// Names are relative to the store's prefix and use `/` as separator. Implementations must be
/// safe to call concurrently. Every error thrown is a ``StoreError``.
public protocol BlobStore: Sendable {
    /// Reads the bytes of `range` from object `name`, clipped to the object's end: a range that
    /// reaches past the end returns the bytes up to the end, and one that starts at or past the
    /// end returns no bytes.
    ///
    /// - Throws: ``StoreError`` with code `.notFound` when the object does not exist.
    func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8]

    /// Reads a whole object.
    func read(_ name: String) async throws -> [UInt8]

    /// Writes an object, replacing any object of that name. Vecgo itself only writes names that
    /// are unique to the writer, so it never replaces anything.
    func put(_ name: String, _ bytes: [UInt8]) async throws

    /// Creates an object only if no object of that name exists: the commit point of a version.
    ///
    /// - Throws: ``StoreError`` with code `.alreadyExists` when the name is taken.
    func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws

    /// Lists objects whose names start with `prefix`, in ascending name order, starting after
    /// `startAfter` when given.
    func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo]

    /// Deletes an object. Deleting a missing object is not an error.
    func delete(_ name: String) async throws

    /// The size in bytes of an object.
    ///
    /// - Throws: ``StoreError`` with code `.notFound` when the object does not exist.
    func size(_ name: String) async throws -> UInt64

    /// Reads several ranges of one object, each clipped like ``read(_:range:)``, in the order
    /// given. Stores that can serve them with fewer requests (a cache that coalesces nearby
    /// ranges) do; the default reads them in parallel.
    func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]]

    /// Reads `ranges` of `name` and returns what `check` makes of them. The default reads once
    /// more when `check` fails, so bytes damaged on the way are told apart from bytes damaged in
    /// the store (the second failure is the one reported); a cache (Tiering's `CachingStore`)
    /// also drops the bytes that failed from its tiers before reading again.
    func readChecked<T: Sendable>(_ name: String, ranges: [Range<UInt64>],
                                  _ check: @Sendable ([[UInt8]]) throws -> T) async throws -> T

    /// The commit store that decides this store's versions when `Vecgo.open` is given none
    /// (`.commitStore(_:)`). The default is a ``ConditionalPutCommitStore`` over this store;
    /// ``DynamoDBCommitStore`` answers itself, and a wrapper may answer its inner store's.
    var commitStore: any CommitStore { get }
}

extension BlobStore {
    /// Reads a whole object through a ranged read of everything.
    public func read(_ name: String) async throws -> [UInt8] {
        try await read(name, range: 0..<UInt64.max)
    }

    public func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]] {
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (i, r) in ranges.enumerated() {
                group.addTask { (i, try await self.read(name, range: r)) }
            }
            var out = [[UInt8]](repeating: [], count: ranges.count)
            for try await (i, bytes) in group { out[i] = bytes }
            return out
        }
    }

    public func readChecked<T: Sendable>(_ name: String, ranges: [Range<UInt64>],
                                         _ check: @Sendable ([[UInt8]]) throws -> T) async throws -> T {
        let first = try await read(name, ranges: ranges)
        do {
            return try check(first)
        } catch {
            // Bytes damaged on the way are not damaged in the store: one more read tells them apart.
            return try check(try await read(name, ranges: ranges))
        }
    }

    /// A ``ConditionalPutCommitStore`` over this store.
    public var commitStore: any CommitStore { ConditionalPutCommitStore(objects: self) }

    /// Lists every object whose name starts with `prefix`, in ascending name order.
    public func list(prefix: String) async throws -> [ObjectInfo] {
        try await list(prefix: prefix, startAfter: nil)
    }
}

/// One entry of a listing.
public struct ObjectInfo: Sendable, Hashable {
    /// The object's name relative to the store's prefix.
    public var name: String
    /// The object's size in bytes.
    public var size: UInt64
    /// When the object was written, when the store says (vacuum's grace period relies on it).
    public var lastModified: Date?

    public init(name: String, size: UInt64, lastModified: Date? = nil) {
        self.name = name
        self.size = size
        self.lastModified = lastModified
    }
}
