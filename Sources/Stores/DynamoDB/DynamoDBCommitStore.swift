// DynamoDBCommitStore: a commit store that decides versions with a conditional write to a
// DynamoDB table (the newest is found without listing), and a blob store view of the objects
// through which no manifest bypasses the table.
import Foundation
import SegmentFormat

/// Versions committed through DynamoDB, objects kept in any ``BlobStore``: the commit of a
/// version is decided by a table rather than by the object store's conditional writes.
///
/// The table has the key `(base_uri HASH S, version RANGE N)`; ``createTableIfNeeded()``
/// makes it. One item per version; `base_uri` names the database, so one table serves many.
/// Every client of a database must use the same base URI (it is kept with a trailing `/`).
///
/// A create-if-absent of a manifest name (the engine's commit) of version `v` goes:
/// 0. version `v-1` is made sure to be finalised (its writer may have stopped early);
/// 1. the manifest bytes are written under a staging name (`staged_MANIFEST-…-<random>.bin`);
/// 2. **the commit point**: `PutItem` of `(base_uri, v, staged name)` with
///    `attribute_not_exists(version)`; a failed condition is ``StoreError/Code-swift.struct/alreadyExists``
///    (unless the item names this attempt's staged object: a retried put whose first attempt landed);
/// 3. finalising: the bytes are written under the manifest's own name (create-if-absent; an
///    object already there must hold the same bytes), the item is marked `finalised`, and the
///    staged object is deleted.
///
/// A writer may stop after step 2. Whoever next needs that version (``latestVersion()``, a
/// listing, a read of the manifest by name, or the next commit) finalises it from the staged
/// object, so a committed version is never lost and the object store ends up holding every
/// manifest, as without this store. Because of step 0, only the newest version can be
/// unfinalised. A reader without write permission that cannot finalise is served the staged
/// bytes. Every other name passes straight through to `objects`, which must support
/// create-if-absent (finalisers may race).
///
/// Pass it to `Vecgo.open` both as the backend's store (`.remote(store)`: its reads complete
/// unfinished commits) and, implicitly, as the commit store: its ``commitStore`` is itself.
/// Manifest object names are `SegmentFormat`'s rule (`Manifest.objectName(version:)`).
public final class DynamoDBCommitStore: BlobStore, CommitStore, CustomStringConvertible {
    /// Where the objects are.
    public let objects: any BlobStore
    /// The database's key in the table (for example `s3://bucket/prefix/`), ending in `/`.
    public let baseURI: String
    private let db: DynamoDBClient

    /// Creates a store. No request is made.
    ///
    /// - Parameter baseURI: the database's key in the table; `/` is appended when missing.
    /// - Throws: ``StoreError`` `.invalidArgument` for an empty `baseURI`, a bad table name or
    ///   a malformed endpoint.
    public init(objects: any BlobStore, baseURI: String, configuration: DynamoDBConfiguration) throws {
        guard !baseURI.isEmpty else { throw StoreError(.invalidArgument, "the DynamoDB commit store needs a non-empty base URI") }
        self.objects = objects
        self.baseURI = baseURI.hasSuffix("/") ? baseURI : baseURI + "/"
        db = try DynamoDBClient(configuration)
    }

    public var description: String { "DynamoDBCommitStore(table: \(db.table), base: \(baseURI), objects: \(objects))" }

    /// Creates the table (on-demand capacity) unless it exists, and waits until it is active.
    public func createTableIfNeeded() async throws {
        do {
            _ = try await db.call("CreateTable", [
                "TableName": db.table,
                "AttributeDefinitions": [["AttributeName": "base_uri", "AttributeType": "S"],
                                         ["AttributeName": "version", "AttributeType": "N"]],
                "KeySchema": [["AttributeName": "base_uri", "KeyType": "HASH"], ["AttributeName": "version", "KeyType": "RANGE"]],
                "BillingMode": "PAY_PER_REQUEST",
            ])
        } catch let e as StoreError where e.code == .alreadyExists {}
        for _ in 0..<120 {
            let d = try await db.call("DescribeTable", ["TableName": db.table])
            if ((d["Table"] as? [String: Any])?["TableStatus"] as? String) == "ACTIVE" { return }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        throw StoreError(.network, "DynamoDB table '\(db.table)' did not become ACTIVE within 60 s", object: db.table)
    }

    // MARK: the commit protocol

    /// One version's item.
    struct Item: Sendable {
        var version: UInt64
        var manifest: String
        var staged: String
        var finalised: Bool
    }

    private func decode(_ raw: Any?) throws -> Item {
        guard let a = raw as? [String: Any],
              let v = ((a["version"] as? [String: Any])?["N"] as? String).flatMap(UInt64.init),
              let manifest = (a["manifest"] as? [String: Any])?["S"] as? String,
              let staged = (a["staged"] as? [String: Any])?["S"] as? String else {
            throw StoreError(.invalidResponse, "DynamoDB item of '\(baseURI)' lacks version, manifest or staged", object: db.table)
        }
        return Item(version: v, manifest: manifest, staged: staged,
                    finalised: ((a["finalised"] as? [String: Any])?["BOOL"] as? Bool) ?? false)
    }

    private var key: (UInt64) -> [String: Any] {
        { [baseURI] v in ["base_uri": ["S": baseURI], "version": ["N": String(v)]] }
    }

    /// A staged object older than this is written again before the commit point, so vacuum
    /// (whose grace period is longer) can never have deleted what an item will name.
    static let maxStagedAge: Duration = .seconds(60)

    /// Commits `bytes` as manifest `name` (version `version`). `finalise: false` stops after
    /// the commit point, as a writer that crashed there would (tests use it).
    func commit(_ name: String, version: UInt64, _ bytes: [UInt8], finalise: Bool = true) async throws {
        if version > 1, let previous = try await item(version: version - 1), !previous.finalised {
            _ = try await complete(previous, mustFinalise: true)  // step 0
        }
        var staged = Self.stagedName(name)
        let stagedAt = ContinuousClock.now
        try await objects.put(staged, bytes)
        var item = key(version)
        item["manifest"] = ["S": name]
        item["finalised"] = ["BOOL": false]
        item["commit_time_ms"] = ["N": String(Int64(Date().timeIntervalSince1970 * 1000))]
        if ContinuousClock.now - stagedAt > Self.maxStagedAge {  // stalled: stage afresh
            try? await objects.delete(staged)
            staged = Self.stagedName(name)
            try await objects.put(staged, bytes)
        }
        item["staged"] = ["S": staged]
        do {
            _ = try await db.call("PutItem", [
                "TableName": db.table, "Item": item,
                "ConditionExpression": "attribute_not_exists(#v)", "ExpressionAttributeNames": ["#v": "version"],
            ])
        } catch let e as StoreError where e.code == .alreadyExists {
            // A retried PutItem whose first attempt landed also fails its condition: then the
            // item names this attempt's staged object, and the commit is ours.
            guard let existing = try await self.item(version: version), existing.staged == staged else {
                try? await objects.delete(staged)  // referenced by no item
                throw StoreError(.alreadyExists, "version \(version) of '\(baseURI)' is already committed", object: name,
                                 httpStatus: e.httpStatus, serviceCode: e.serviceCode, requestID: e.requestID)
            }
        }
        // Committed. Finalising may fail; whoever needs this version next (at the latest the
        // next commit, step 0) finishes it, and the commit stands either way.
        guard finalise else { return }
        do { try await self.finalise(Item(version: version, manifest: name, staged: staged, finalised: false), bytes) } catch let e as StoreError where e.code == .conflict {
            throw e  // another database's manifest is in the way: the caller must know
        } catch {}
    }

    private static func stagedName(_ manifest: String) -> String {
        "staged_\(manifest.dropLast(4))-\(String(UInt64.random(in: 0...UInt64.max), radix: 16)).bin"
    }

    /// Step 3: the manifest under its own name, the item marked, the staged copy removed.
    ///
    /// - Throws: ``StoreError`` `.conflict` when an object of the manifest's name already
    ///   holds other bytes (a database committed without this table, or under another base
    ///   URI); the item then stays unfinalised.
    private func finalise(_ item: Item, _ bytes: [UInt8]) async throws {
        do { try await objects.putIfAbsent(item.manifest, bytes) } catch let e as StoreError where e.code == .alreadyExists {
            guard try await objects.read(item.manifest) == bytes else {
                throw StoreError(.conflict, "\(item.manifest) already exists with other content than version \(item.version) committed in DynamoDB under '\(baseURI)': was this database also written without the table, or under another base URI?",
                                 object: item.manifest)
            }
        }
        _ = try await db.call("UpdateItem", [
            "TableName": db.table, "Key": key(item.version),
            "UpdateExpression": "SET finalised = :t", "ExpressionAttributeValues": [":t": ["BOOL": true]],
        ])
        try? await objects.delete(item.staged)
    }

    /// The manifest bytes of a committed `item`, finalising it first if its writer did not.
    /// When finalising fails (a reader without write permission), the staged bytes are
    /// returned anyway unless `mustFinalise`.
    ///
    /// - Throws: ``StoreError`` `.notFound` when neither the staged nor the final object exists
    ///   (vacuum removed the version).
    private func complete(_ item: Item, mustFinalise: Bool = false) async throws -> [UInt8] {
        if !item.finalised {
            do {
                let bytes = try await objects.read(item.staged)
                do { try await finalise(item, bytes) } catch where !mustFinalise {}
                return bytes
            } catch let e as StoreError where e.code == .notFound {
                // Someone finalised it meanwhile and removed the staged copy: read the manifest.
            }
        }
        return try await objects.read(item.manifest)
    }

    /// The item of `version`, nil when that version was never committed (consistent read).
    func item(version: UInt64) async throws -> Item? {
        let a = try await db.call("GetItem", ["TableName": db.table, "Key": key(version), "ConsistentRead": true])
        guard let raw = a["Item"] else { return nil }
        return try decode(raw)
    }

    /// The newest item: a consistent `Query` newest first, `Limit 1`.
    func latestItem() async throws -> Item? {
        let a = try await db.call("Query", [
            "TableName": db.table, "KeyConditionExpression": "base_uri = :u",
            "ExpressionAttributeValues": [":u": ["S": baseURI]],
            "ScanIndexForward": false, "Limit": 1, "ConsistentRead": true,
        ])
        guard let items = a["Items"] as? [Any], let first = items.first else { return nil }
        return try decode(first)
    }

    /// Every committed version number, oldest first (pages through the table's items).
    public func committedVersions() async throws -> [UInt64] {
        var out: [UInt64] = []
        var start: Any?
        repeat {
            var request: [String: Any] = [
                "TableName": db.table, "KeyConditionExpression": "base_uri = :u",
                "ExpressionAttributeValues": [":u": ["S": baseURI]], "ConsistentRead": true,
                "ProjectionExpression": "#v, manifest, staged", "ExpressionAttributeNames": ["#v": "version"],
            ]
            if let start { request["ExclusiveStartKey"] = start }
            let a = try await db.call("Query", request)
            for raw in a["Items"] as? [Any] ?? [] { out.append(try decode(raw).version) }
            start = a["LastEvaluatedKey"]
        } while start != nil
        return out
    }

    /// The newest committed version (finalised first when its writer stopped early).
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` when the table has no version of this base
    ///   URI but the objects hold manifests: the database was committed without this table (or
    ///   under another base URI), and using the table now would fork its history.
    public func latestVersion() async throws -> UInt64? {
        guard let item = try await latestItem() else {
            if let stray = try await objects.list(prefix: Manifest.objectNamePrefix).first(where: { Self.manifestVersion($0.name) != nil }) {
                throw StoreError(.invalidArgument, "table '\(db.table)' has no version of '\(baseURI)', but the store holds manifests (\(stray.name)): this database was committed without the table or under another base URI; open it the way it was written",
                                 object: stray.name)
            }
            return nil
        }
        if !item.finalised { _ = try await complete(item) }
        return item.version
    }

    /// The version whose manifest object is exactly `name`, nil for any other name.
    static func manifestVersion(_ name: String) -> UInt64? {
        guard let v = Manifest.version(fromObjectName: name), Manifest.objectName(version: v) == name else { return nil }
        return v
    }

    // MARK: CommitStore

    /// This store: versions of a database opened on it are decided by the table.
    public var commitStore: any CommitStore { self }

    /// The commit protocol above (steps 0–3) for manifest `name` of `version`.
    public func commit(version: UInt64, manifest name: String, _ bytes: [UInt8]) async throws {
        try await commit(name, version: version, bytes)
    }

    /// ``latestVersion()``: the newest version, or ``LatestVersion/empty`` (never
    /// ``LatestVersion/askObjects``: the table is the record).
    public func latest() async throws -> LatestVersion {
        try await latestVersion().map(LatestVersion.version) ?? .empty
    }

    /// The manifest of a committed version, finalised first when its writer stopped early (a
    /// reader without write permission gets the staged bytes); nil when the table has no item.
    public func committedManifest(version: UInt64, name: String) async throws -> [UInt8]? {
        guard let item = try await item(version: version) else { return nil }
        return try await complete(item)
    }

    // MARK: BlobStore

    /// A manifest name (and version) is committed through the table (``commit(version:manifest:_:)``);
    /// other names go to `objects`.
    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        guard let v = Self.manifestVersion(name) else { return try await objects.putIfAbsent(name, bytes) }
        try await commit(name, version: v, bytes)
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        do { return try await objects.read(name, range: range) } catch let e as StoreError where e.code == .notFound {
            guard let bytes = try await committedManifest(name) else { throw e }
            return clip(bytes, range)
        }
    }

    public func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]] {
        do { return try await objects.read(name, ranges: ranges) } catch let e as StoreError where e.code == .notFound {
            guard let bytes = try await committedManifest(name) else { throw e }
            return ranges.map { clip(bytes, $0) }
        }
    }

    public func size(_ name: String) async throws -> UInt64 {
        do { return try await objects.size(name) } catch let e as StoreError where e.code == .notFound {
            guard let bytes = try await committedManifest(name) else { throw e }
            return UInt64(bytes.count)
        }
    }

    /// For a missing manifest object: its bytes when its version was committed (finalising
    /// it), nil when it was not.
    private func committedManifest(_ name: String) async throws -> [UInt8]? {
        guard let v = Self.manifestVersion(name) else { return nil }
        return try await committedManifest(version: v, name: name)
    }

    /// Lists `objects`; a listing that can hold manifests first completes the newest version,
    /// so it is never missing from the listing.
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        if Manifest.objectNamePrefix.hasPrefix(prefix) || prefix.hasPrefix(Manifest.objectNamePrefix) { _ = try await latestVersion() }
        return try await objects.list(prefix: prefix, startAfter: startAfter)
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws { try await objects.put(name, bytes) }
    public func delete(_ name: String) async throws { try await objects.delete(name) }
}
