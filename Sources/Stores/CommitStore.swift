// CommitStore, the protocol of whoever decides which versions of a database exist, and
// ConditionalPutCommitStore, the default: create-if-absent of the manifest object itself.
public import Foundation

/// Who decides which versions of a database exist: the commit point of the engine's commit
/// protocol. The engine builds version `v`'s manifest (its object name comes from
/// `SegmentFormat`'s `Manifest.objectName(version:)`, the one naming rule) and asks the commit
/// store to commit it; exactly one writer's commit of each version succeeds.
///
/// Implementations: ``ConditionalPutCommitStore`` (the default: S3, MinIO and S3 Express
/// conditional writes, and local directories and memory through their create-if-absent) and
/// ``DynamoDBCommitStore`` (a conditional `PutItem` in a DynamoDB table). Pass one to
/// `Vecgo.open` with `.commitStore(_:)`; without it a store's ``BlobStore/commitStore`` is used.
public protocol CommitStore: Sendable {
    /// Commits version `version`, whose manifest object is `name` holding `bytes`, unless that
    /// version is already committed.
    ///
    /// - Throws: ``StoreError`` `.alreadyExists` when the version was already committed (another
    ///   writer won the race, or an earlier attempt of this very commit landed: the caller reads
    ///   the version back with ``committedManifest(version:name:)`` to tell). Any other error
    ///   leaves open whether the commit landed; the caller reads back too.
    func commit(version: UInt64, manifest name: String, _ bytes: [UInt8]) async throws

    /// What this store knows of the newest committed version: ``LatestVersion/askObjects``
    /// when it keeps no record apart from the manifest objects (then the caller finds the
    /// newest manifest in the object store).
    func latest() async throws -> LatestVersion

    /// The manifest bytes committed as `version` (object `name`), nil when that version was
    /// never committed (or vacuum removed it). Completes a commit whose writer stopped after
    /// the commit point when the store has such a state.
    func committedManifest(version: UInt64, name: String) async throws -> [UInt8]?
}

/// What a ``CommitStore`` knows of the newest committed version.
public enum LatestVersion: Sendable, Hashable {
    /// The store keeps no record of versions apart from the manifest objects: find the
    /// newest manifest in the object store (listing, probing by name).
    case askObjects
    /// No version has been committed.
    case empty
    /// The newest committed version; its manifest can be read by name.
    case version(UInt64)
}

/// Versions decided by the object store's own create-if-absent: a commit is a put-if-absent of
/// the manifest object (`If-None-Match: *` on S3, S3 Express and MinIO; `link`/`O_EXCL` and
/// fsync in a ``LocalDirectoryStore``; a locked check in a ``MemoryBlobStore``). It is the
/// default commit store of every store, and serves local directories as well as remote ones:
/// there is no separate local commit store.
public struct ConditionalPutCommitStore: CommitStore, CustomStringConvertible {
    /// The store whose create-if-absent decides versions.
    public let objects: any BlobStore

    /// Commits through `objects`' create-if-absent.
    public init(objects: any BlobStore) { self.objects = objects }

    public var description: String { "ConditionalPutCommitStore(\(objects))" }

    /// A put-if-absent of `name`: ``StoreError`` `.alreadyExists` when it exists.
    public func commit(version: UInt64, manifest name: String, _ bytes: [UInt8]) async throws {
        try await objects.putIfAbsent(name, bytes)
    }

    /// Always ``LatestVersion/askObjects``: the manifest objects are the only record.
    public func latest() async throws -> LatestVersion { .askObjects }

    /// A read of `name`; nil when it does not exist.
    public func committedManifest(version: UInt64, name: String) async throws -> [UInt8]? {
        do { return try await objects.read(name) } catch let e as StoreError where e.code == .notFound { return nil }
    }
}
