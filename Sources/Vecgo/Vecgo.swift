public import IndexCore
public import SegmentFormat
import Stores
public import Tiering
public import Foundation
import Logging

/// One search hit.
public struct SearchResult: Sendable, Hashable {
    /// The row's primary key.
    public var id: UInt64
    /// Distance to the query under the database's metric; smaller is closer.
    public var distance: Float
    /// The row's metadata, when the search asked for it (``Include/metadata``).
    public var metadata: Metadata?
    /// The row's payload, when asked for (``Include/payload``).
    public var payload: [UInt8]?
    /// The row's stored vector, when asked for (``Include/vector``).
    public var vector: [Float]?
    /// The row's string key, when it was written with one and metadata was asked for.
    public var key: String? {
        if case .string(let k)? = metadata?[Vecgo.keyField] { return k }
        return nil
    }

    public init(id: UInt64, distance: Float, metadata: Metadata? = nil, payload: [UInt8]? = nil, vector: [Float]? = nil) {
        self.id = id
        self.distance = distance
        self.metadata = metadata
        self.payload = payload
        self.vector = vector
    }
}

/// One committed version, as ``Vecgo/versions(_:)`` lists it.
public struct VersionInfo: Sendable, Hashable {
    /// The version number.
    public var version: UInt64
    /// When it was committed.
    public var commitTime: Date
    /// Segments it references.
    public var segments: Int
    /// Rows stored in those segments (superseded and deleted rows included until compaction).
    public var rows: UInt64
    /// The writer epoch it was committed under.
    public var writerEpoch: UInt64
}

/// Counters of the cache tiers (RAM, disk, remote).
public typealias TierCounters = TierStats.Snapshot

/// What one search cost.
public struct QueryStats: Sendable, Hashable {
    /// Blocks and requests of this query alone, per tier.
    public var tiers: TierCounters
    /// Wall-clock time of the search in microseconds.
    public var latencyMicros: Double
}

/// What a commit builds on the version before it: the next manifest and, when the commit
/// wrote a pk-index layer, the key index of the new version (its view takes it instead of
/// reading it back).
struct NextVersion {
    var manifest: Manifest
    var pk: PKChain? = nil
    /// Which rows the commit killed and added (its base's segments kept their places).
    var live: LiveChanges? = nil
}

/// The keys one commit changed, against the version it builds on.
struct PKChanges {
    /// Keys added or moved, at their new location (ordinals of the new manifest's segments).
    var assigned: [UInt64: PKIndex.Location] = [:]
    /// Keys removed.
    var removed: [UInt64] = []
    /// Entries and tombstones of a delta holding these changes.
    var size: Int { assigned.count + removed.count }
}

/// A Vecgo database handle: a writer, or a stateless read-only reader, of one prefix of an
/// object store.
///
/// Writes (inserts with generated keys, upserts and deletes by key) go to an in-memory table
/// that searches see at once; ``commit()`` writes them as an immutable segment plus a
/// pk-index layer (a delta of the keys it changed, or now and then a full index) and then
/// creates the next manifest with a create-if-absent put, the commit point. When another writer took that version first, the commit re-reads the winner
/// and retries on top of it (appends and changes to different keys merge; a key both changed
/// is a `.conflict`). ``close()`` commits what is pending.
public actor Vecgo {
    /// Floats per vector.
    public nonisolated let dimension: Int
    /// The distance metric.
    public nonisolated let metric: Metric
    /// Whether mutating calls are refused.
    public nonisolated let isReadOnly: Bool

    let remote: any BlobStore
    /// Decides which versions exist: every manifest is committed through it.
    let commits: any CommitStore
    let cached: CachingStore
    let writerID: String
    let config: Configuration
    var view: VersionView
    /// Writes not yet committed.
    private var pending: PendingWrites
    /// Writes a commit in progress is publishing: still searched, put back if it fails.
    private var flushing: PendingWrites?
    /// The commit in progress (commits of one handle run one at a time).
    private var commitTask: Task<UInt64, any Error>?
    /// The version the last successful commit was built on.
    private var builtOn: VersionView?
    /// When this handle last learned that its view was the newest version (opening, a
    /// refresh, a commit). A commit builds only on a view confirmed within
    /// `maxCommitObjectAge`: vacuum frees version numbers only after its longer grace
    /// period, so the number after a recently confirmed view can never have been freed.
    var viewConfirmedAt = ContinuousClock.now
    /// What the last commits tell about other writers, for fair turns (``commitManifest(label:_:)``).
    var fairness = Fairness()
    /// Whether pending rows are being written out as a segment (``spillIfFull()``); writes wait.
    private var spilling = false
    private var spillWaiters: [CheckedContinuation<Void, Never>] = []
    /// Why writing pending rows out last failed, if it did: the rows stay in the memtable (the
    /// next commit writes them), no spill is tried again until a commit or ``discardPending()``,
    /// and writes are refused from twice `.maxSegmentBytes` on.
    private var spillError: VecgoError?
    private var manifestBusy = false
    private var manifestWaiters: [CheckedContinuation<Void, Never>] = []
    /// Set by ``close()``: writes are refused from then on.
    private var closing = false
    /// Why the last background flush (``OpenOption/memtableBudget(_:)``) failed, if it did;
    /// its writes are pending again.
    public private(set) var backgroundCommitError: VecgoError?
    /// Generated keys this writer may hand out, reserved by a commit of its own.
    private var idLease: Range<UInt64> = 0..<0
    /// The writer epoch this handle writes under; a manifest with a higher one fences it.
    private var epoch: UInt64
    var segmentSequence = 0
    private var closed = false
    private var refresher: Task<Void, Never>?
    /// The swift-metrics series this handle reports to.
    let metrics = VecgoMetrics()
    /// Test hook: told, off the actor, each row a segment build of this handle adds to a
    /// memtable's graph (so a test can hold a build half-way). Never set outside tests.
    private(set) var segmentBuildHook: (@Sendable (Int) -> Void)?

    /// Sets ``segmentBuildHook`` (tests only, through `@testable import`).
    func setSegmentBuildHook(_ hook: (@Sendable (Int) -> Void)?) { segmentBuildHook = hook }

    /// Opens or creates a database.
    ///
    /// - Parameters:
    ///   - backend: where the database lives.
    ///   - options: ``OpenOption``s; a reader needs none (dimension and metric come from the manifest).
    /// - Throws: ``VecgoError``: `.notFound` when there is no database and no `.create`,
    ///   `.invalidArgument` for bad options or a dimension/metric that differs from the stored one.
    public static func open(_ backend: Backend, _ options: OpenOption...) async throws -> Vecgo {
        try await open(backend, options: options)
    }

    /// Opens or creates a database with an array of options.
    public static func open(_ backend: Backend, options: [OpenOption]) async throws -> Vecgo {
        let config = try Configuration(options)
        let remote: any BlobStore
        switch backend {
        case .remote(let s): remote = s
        case .directory(let path):
            do { remote = try LocalDirectoryStore(root: path) } catch { throw VecgoError.wrap(error, "opening \(path)") }
        }
        let stats = TierStats()
        let disk: DiskCache?
        if let dir = config.cacheDirectory {
            do { disk = try DiskCache(directory: dir, capacityBytes: config.diskCacheSize, stats: stats, logger: config.logger) } catch {
                throw VecgoError(.invalidArgument, "cannot use cache directory '\(dir)': \(error)")
            }
        } else {
            disk = nil
        }
        let cached = CachingStore(remote: remote, ram: BlockCache(capacityBytes: config.blockCacheSize, stats: stats),
                                  disk: disk, logger: config.logger)
        let commits = config.commitStore ?? remote.commitStore
        let manifest: Manifest?
        do {
            if let v = config.atVersion {
                manifest = try await committedManifest(version: v, cached, commits: commits)
            } else if let t = config.asOf {
                manifest = try await manifestAsOf(t, cached)
            } else {
                manifest = try await latestManifest(cached, commits: commits)
            }
        } catch {
            throw VecgoError.wrap(error, "opening the database")
        }
        let dimension: Int, metric: Metric
        if let manifest {
            guard let m = Metric(rawValue: manifest.metric) else {
                throw VecgoError(.unsupportedFormat, "manifest version \(manifest.version) has unknown metric code \(manifest.metric)")
            }
            if let create = config.create, create.dimension != manifest.dimension || create.metric != m {
                throw VecgoError(.invalidArgument, "a database with dimension \(manifest.dimension) and metric \(m) already exists here; asked to create dimension \(create.dimension), metric \(create.metric)")
            }
            dimension = manifest.dimension
            metric = m
        } else if let create = config.create {
            dimension = create.dimension
            metric = create.metric
        } else {
            throw VecgoError(.notFound, "no database found (no MANIFEST-*.bin objects); open with .create(dimension:metric:) to create one")
        }
        let db = Vecgo(remote: remote, commits: commits, cached: cached, manifest: manifest, dimension: dimension, metric: metric,
                       config: config)
        if config.exclusiveWriter { try await db.takeOver() }
        if let interval = config.refreshInterval { await db.startRefreshing(every: interval) }
        return db
    }

    private init(remote: any BlobStore, commits: any CommitStore, cached: CachingStore, manifest: Manifest?, dimension: Int,
                 metric: Metric, config: Configuration) {
        self.remote = remote
        self.commits = commits
        self.cached = cached
        self.dimension = dimension
        self.metric = metric
        self.isReadOnly = config.readOnly
        self.config = config
        self.pending = PendingWrites(dimension: dimension, metric: metric)
        self.writerID = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        self.view = VersionView(manifest, store: cached, metric: metric, budget: DecodedBudget(capacity: config.decodedCacheSize),
                                keepsPKIndex: !config.readOnly)
        self.epoch = manifest?.writerEpoch ?? 0
    }

    private func startRefreshing(every seconds: Double) {
        refresher = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                guard let self, !Task.isCancelled else { return }
                do { _ = try await self.refresh() } catch {
                    guard !Task.isCancelled else { return }
                    // Not swallowed: counted and logged; the handle keeps serving its version and tries again.
                    self.metrics.refreshFailed(error, logger: self.config.logger)
                }
            }
        }
    }

    /// Commits a new writer epoch (no data change): writers opened before this fail to commit.
    private func takeOver() async throws {
        epoch = .max  // the newest epoch, whatever it is now, is the one this writer supersedes
        let claimed = try await commitManifest(label: "taking over as the exclusive writer") { base in
            var m = try self.template(base)
            m.writerEpoch += 1
            return NextVersion(manifest: m)
        }
        epoch = claimed.writerEpoch
    }

    /// Finds the newest manifest.
    ///
    /// - When `commits` keeps its own record (DynamoDB): its latest version, then one read
    ///   (through `commits` when the object is not there yet: an unfinished commit).
    /// - Knowing a version `known` that exists: probes `MANIFEST-<known+1>`, `+3`, `+7`, … (doubling steps) by
    ///   size and binary-searches the gap — two requests when nothing is new, no listing
    ///   (listings cost more, and on S3 Express read the whole prefix). Versions are
    ///   contiguous, and vacuum deletes the oldest first, so if `known` still exists every
    ///   version after it up to the newest does too.
    /// - Holding `known`'s manifest (`knownManifest`, e.g. what a lost race's read-back found):
    ///   one probe of `MANIFEST-<known+1>`; when it is absent that manifest is the newest, read
    ///   no second time. This keeps a writer that lost a race as few round trips from its next
    ///   put as the winner is (issue 15, part 3).
    /// - Otherwise (opening, or `known` was vacuumed): one LIST of `MANIFEST-` names, then one
    ///   read of the last.
    static func latestManifest(_ store: any BlobStore, commits: any CommitStore, after known: UInt64 = 0,
                               knownManifest: Manifest? = nil) async throws -> Manifest? {
        switch try await commits.latest() {
        case .empty: return nil
        case .version(let v): return try await committedManifest(version: v, store, commits: commits)
        case .askObjects: break
        }
        if known > 0, let held = knownManifest, held.version == known {
            guard try await manifestExists(known + 1, store) else { return held }
            return try await manifestAt(version: newestVersion(after: known + 1, store) ?? known + 1, store)
        }
        if known > 0, let v = try await newestVersion(after: known, store) {
            return try await manifestAt(version: v, store)
        }
        let listing: [ObjectInfo]
        do { listing = try await store.list(prefix: "MANIFEST-") } catch {
            throw VecgoError.wrap(error, "listing MANIFEST-* to find the newest version")
        }
        // A listing only says where to start: a damaged or stale one may miss the newest
        // versions. The version after the newest it names must be absent (probed while that
        // manifest is read); when it exists, probing forward finds the newest.
        let listed = listing.compactMap { o in Manifest.version(fromObjectName: o.name).map { ($0, o) } }
        guard let (newest, info) = listed.max(by: { $0.0 < $1.0 }) else {
            // No manifest name at all: an empty database, or a listing that lost them; version 1 decides.
            guard try await manifestExists(1, store) else {
                guard listing.isEmpty else {
                    throw VecgoError(.corrupted, "the listing of MANIFEST-* holds \(listing.count) entries but no manifest name (first: '\(listing[0].name)'), and version 1 does not exist; cannot tell the newest version")
                }
                return nil
            }
            return try await manifestAt(version: newestVersion(after: 1, store) ?? 1, store)
        }
        async let newer = manifestExists(newest + 1, store)
        async let read: Result<Manifest, any Error> = { () async -> Result<Manifest, any Error> in
            do {  // a ranged read of the listed size: cached like any other read
                return .success(try await store.readChecked(info.name, ranges: [0..<info.size]) {
                    try Manifest.decode($0[0], object: info.name)
                })
            } catch { return .failure(error) }
        }()
        if try await newer {
            _ = await read
            return try await manifestAt(version: newestVersion(after: newest + 1, store) ?? newest + 1, store)
        }
        return try await read.get()
    }

    /// Whether `MANIFEST-<version>` exists (a size request; no listing).
    static func manifestExists(_ version: UInt64, _ store: any BlobStore) async throws -> Bool {
        do {
            _ = try await store.size(Manifest.objectName(version: version))
            return true
        } catch let e as StoreError where e.code == .notFound {
            return false
        }
    }

    /// The newest version, found by probing forward from `known` (see ``latestManifest(_:after:)``);
    /// nil when `known` no longer exists.
    static func newestVersion(after known: UInt64, _ store: any BlobStore) async throws -> UInt64? {
        func exists(_ v: UInt64) async throws -> Bool { try await manifestExists(v, store) }
        var present = known, step: UInt64 = 1
        var missing = known + 1
        while try await exists(missing) {  // gallop: +1, +2, +4, …
            present = missing
            step = min(step * 2, 1 << 40)
            missing = present + step
        }
        while missing - present > 1 {  // the newest lies in [present, missing)
            let mid = present + (missing - present) / 2
            if try await exists(mid) { present = mid } else { missing = mid }
        }
        if present == known, !(try await exists(known)) { return nil }  // vacuumed under us
        return present
    }

    /// The manifest of `version`: one read by name, no listing.
    static func manifestAt(version: UInt64, _ store: any BlobStore) async throws -> Manifest {
        let name = Manifest.objectName(version: version)
        do {
            return try await store.readChecked(name, ranges: [0..<UInt64.max]) { try Manifest.decode($0[0], object: name) }
        } catch let e as StoreError where e.code == .notFound {
            throw VecgoError(.notFound, "version \(version) does not exist (no \(name)); vacuum may have removed it", underlying: e)
        }
    }

    /// The manifest of `version` as ``manifestAt(version:_:)`` reads it, or, when its object is
    /// missing, as `commits` has it (a commit whose writer stopped before writing the object).
    static func committedManifest(version: UInt64, _ store: any BlobStore, commits: any CommitStore) async throws -> Manifest {
        do { return try await manifestAt(version: version, store) } catch let e as VecgoError where e.code == .notFound {
            let name = Manifest.objectName(version: version)
            guard let bytes = try await commits.committedManifest(version: version, name: name) else { throw e }
            return try Manifest.decode(bytes, object: name)
        }
    }

    /// The newest manifest committed at or before `date`: versions are committed in time
    /// order, so a binary search reads O(log n) manifests.
    static func manifestAsOf(_ date: Date, _ store: any BlobStore) async throws -> Manifest {
        let names = try await store.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
        let micros = Int64(date.timeIntervalSince1970 * 1_000_000)
        var lo = 0, hi = names.count - 1
        var best: Manifest?
        while lo <= hi {
            let mid = (lo + hi) / 2
            let m = try await manifestAt(version: names[mid], store)
            if m.commitTimeMicros <= micros {
                best = m
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        guard let best else {
            throw VecgoError(.notFound, "no version was committed at or before \(date)")
        }
        return best
    }

    /// The versions under a store's prefix, oldest first.
    public static func versions(_ backend: Backend) async throws -> [VersionInfo] {
        let store: any BlobStore
        switch backend {
        case .remote(let s): store = s
        case .directory(let path):
            do { store = try LocalDirectoryStore(root: path) } catch { throw VecgoError.wrap(error, "opening \(path)") }
        }
        do {
            let names = try await store.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
            var out: [VersionInfo] = []
            for v in names {
                let m = try await manifestAt(version: v, store)
                out.append(VersionInfo(version: m.version, commitTime: Date(timeIntervalSince1970: Double(m.commitTimeMicros) / 1e6),
                                       segments: m.segments.count, rows: m.segments.reduce(0) { $0 + $1.rowCount },
                                       writerEpoch: m.writerEpoch))
            }
            return out
        } catch {
            throw VecgoError.wrap(error, "listing versions")
        }
    }

    // MARK: writes

    /// Adds a row under a generated key; it is searchable at once and durable after the next
    /// ``commit()``. Generated keys are unique across concurrent writers: each writer reserves
    /// a block of them with a small commit of its own when it runs out.
    ///
    /// - Returns: the generated primary key.
    /// - Throws: ``VecgoError``: `.readOnly`, `.closed`, `.dimensionMismatch`, `.invalidArgument`
    ///   for NaN or infinity, `.storage`/`.fenced` when reserving keys fails.
    @discardableResult
    public func insert(_ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws -> UInt64 {
        try checkAcceptingWrites()
        try validate(vector, what: "vector")
        let id = try await generatedID()
        await waitWhileSpilling()
        try checkAcceptingWrites()  // close() may have begun during the awaits
        pending.put(id: id, vector: normalizedIfCosine(vector), metadata: metadata, payload: payload ?? [])
        try await afterWrite()
        return id
    }

    /// Adds many rows under generated keys, in order; see ``insert(_:metadata:payload:)``.
    /// Every row is checked before any is added.
    @discardableResult
    public func batchInsert(_ rows: [(vector: [Float], metadata: Metadata, payload: [UInt8]?)]) async throws -> [UInt64] {
        try checkAcceptingWrites()
        for (i, r) in rows.enumerated() { try validate(r.vector, what: "row \(i)'s vector") }
        var ids: [UInt64] = []
        ids.reserveCapacity(rows.count)
        for _ in rows { ids.append(try await generatedID()) }  // all keys first: a failure adds no row
        await waitWhileSpilling()
        try checkAcceptingWrites()
        for (id, r) in zip(ids, rows) {
            pending.put(id: id, vector: normalizedIfCosine(r.vector), metadata: r.metadata, payload: r.payload ?? [])
        }
        try await afterWrite()
        return ids
    }

    /// Writes the row of key `id`, replacing any row with that key (committed or pending).
    /// Searches see only the new row from now on.
    ///
    /// Keys are the caller's: any `UInt64`. Keys you choose and keys ``insert(_:metadata:payload:)``
    /// generates share one space; a database should use one kind or keep them apart (generated
    /// keys start at 1 and grow).
    public func upsert(id: UInt64, _ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws {
        await waitWhileSpilling()
        try checkAcceptingWrites()
        try validate(vector, what: "vector")
        pending.touch(id, view: view)
        pending.put(id: id, vector: normalizedIfCosine(vector), metadata: metadata, payload: payload ?? [])
        try await afterWrite()
    }

    /// Deletes the row of key `id` (pending or committed); deleting a missing key is not an
    /// error. Searches stop returning it at once; the next commit makes it durable.
    public func delete(id: UInt64) async throws {
        await waitWhileSpilling()
        try checkAcceptingWrites()
        pending.touch(id, view: view)
        pending.delete(id: id)
    }

    /// After rows were added: writes them out as a segment when they reached
    /// `.maxSegmentBytes`, and starts a background commit when `.memtableBudget` says so.
    private func afterWrite() async throws {
        try await spillIfFull()
        flushIfOverBudget()
    }

    /// When the memtable holds `.maxSegmentBytes` of vectors, writes its rows out as a segment
    /// (built off the actor, uploaded) that the next commit publishes; searches see the rows
    /// all along (from the memtable until the segment replaces it), other writes wait.
    private func spillIfFull() async throws {
        guard !spilling, spillError == nil, pending.memtable.count * dimension * 4 >= config.maxSegmentBytes else { return }
        spilling = true
        defer {
            spilling = false
            for w in spillWaiters { w.resume() }
            spillWaiters.removeAll()
        }
        let table = pending.memtable
        do {
            let built = try await buildSegment(table)
            // Writes waited, but a failed commit may have merged its batch back into `pending`, or
            // `discardPending()` emptied it, while the segment was built: then the table written
            // out is no longer the pending one, and the segment is dropped (an orphan for vacuum).
            guard pending.memtable.graph === table.graph, pending.memtable.count == table.count else { return }
            pending.spilled.append(Spill(object: OwnObject(name: built.object.name, bytes: [], written: built.object.written),
                                         ref: built.ref, liveRows: built.liveRows,
                                         reader: SegmentReader(ref: built.ref, store: cached, metric: metric, budget: view.budget)))
            pending.memtable = Memtable(dimension: dimension, metric: metric)
        } catch {
            guard pending.memtable.graph === table.graph else { return }  // not the pending table any more
            // The write that crossed the limit succeeded (its row is pending); only the spill failed.
            spillError = VecgoError.wrap(error, "writing \(table.liveCount) pending rows out as a segment")
        }
    }

    private func waitWhileSpilling() async {
        while spilling { await withCheckedContinuation { spillWaiters.append($0) } }
    }

    /// Lays `table` out as a segment (its layout by size), encodes it off the actor, and writes
    /// it under a name of this writer's. Returns its manifest entry, the segment row of each
    /// live key, and the object.
    func buildSegment(_ table: Memtable, tag: String = "") async throws -> (ref: SegmentRef, liveRows: [UInt64: Int], object: OwnObject) {
        let layout = config.layout(rows: table.liveCount, dimension: dimension)
        let hook = segmentBuildHook
        let (encoded, liveRows, rows, minID, maxID) = try await Task.detached { () throws -> (EncodedSegment, [UInt64: Int], Int, UInt64, UInt64) in
            let (contents, liveRows) = table.contents(layout, graphRowAdded: hook)
            return (try SegmentCodec.encode(contents), liveRows, contents.rowCount, contents.ids.min() ?? 0, contents.ids.max() ?? 0)
        }.value
        let object = try await writeOwnSegment(encoded.bytes, tag: tag)
        let ref = SegmentRef(name: object.name, size: UInt64(encoded.bytes.count), tailOffset: encoded.tailOffset,
                             tailLength: encoded.tailLength, rowCount: UInt64(rows), minID: minID, maxID: maxID)
        return (ref, liveRows, OwnObject(name: object.name, bytes: [], written: object.written))
    }

    /// The metadata field that holds a row's string key.
    public static let keyField = "_key"

    /// The `UInt64` key a string key is stored under: a 63-bit hash of its UTF-8 bytes with the
    /// top bit set, so it never meets a generated key. Two strings that hash alike are caught
    /// when the second is written (see ``upsert(key:_:metadata:payload:)``).
    public static func id(forKey key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        // splitmix64's finaliser spreads FNV-1a's bits.
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        h ^= h >> 31
        return h | (1 << 63)
    }

    /// Writes the row of string key `key`, replacing any row with that key. The key is kept in
    /// the row's metadata under ``keyField`` and comes back with it.
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` when another string key already stored
    ///   hashes to the same id (about one chance in 10^10 at a million keys), or the usual
    ///   errors of ``upsert(id:_:metadata:payload:)``.
    public func upsert(key: String, _ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws {
        let id = Self.id(forKey: key)
        try await checkNoCollision(key, id)
        var m = metadata
        m[Self.keyField] = .string(key)
        try await upsert(id: id, vector, metadata: m, payload: payload)
    }

    /// Deletes the row of string key `key`; see ``delete(id:)``.
    public func delete(key: String) async throws {
        let id = Self.id(forKey: key)
        try await checkNoCollision(key, id)
        try await delete(id: id)
    }

    /// Fails when the row stored under `id` belongs to another string key.
    private func checkNoCollision(_ key: String, _ id: UInt64) async throws {
        try checkWritable()
        var stored: Metadata?
        let spill = (pending.spilled + (flushing?.spilled ?? [])).first { $0.liveRows[id] != nil }
        if let row = pending.memtable.row(id: id) ?? flushing?.memtable.row(id: id) {
            stored = row.metadata
        } else if let spill, let row = spill.liveRows[id] {
            do { stored = try await spill.reader.rows([row], include: .metadata)[row]?.0 } catch {
                throw VecgoError.wrap(error, "checking key '\(key)'")
            }
        } else if !pending.deletes.contains(id), !(flushing?.deletes.contains(id) ?? false) {
            let view = self.view
            do {
                if let loc = try await view.pk()?.entries[id] {
                    stored = try await view.segments[Int(loc.segment)].rows([Int(loc.row)], include: .metadata)[Int(loc.row)]?.0
                }
            } catch {
                throw VecgoError.wrap(error, "checking key '\(key)'")
            }
        }
        if let stored, case .string(let other)? = stored[Self.keyField], other != key {
            throw VecgoError(.invalidArgument, "string keys '\(key)' and '\(other)' hash to the same id \(id); rename one of them")
        }
    }

    /// Starts a commit in the background when the pending rows reach the memtable budget;
    /// writers go on writing into a new memtable meanwhile.
    /// Starts a background commit when the memtable reached its budget — unless the last one
    /// failed: then the writes wait for an explicit ``commit()`` (or ``discardPending()``),
    /// instead of every write starting a commit bound to fail the same way.
    private func flushIfOverBudget() {
        guard let budget = config.memtableBudget, pending.memtable.count >= budget, commitTask == nil,
              backgroundCommitError == nil else { return }
        Task {
            do { try await self.commit() } catch { self.noteBackgroundFailure(error) }
        }
    }

    private func noteBackgroundFailure(_ error: any Error) {
        backgroundCommitError = VecgoError.wrap(error, "committing in the background")
    }

    private func normalizedIfCosine(_ v: [Float]) -> [Float] { metric == .cosine ? Distance.normalized(v) : v }

    /// Objects this handle wrote for writes not yet committed (pending rows written out as
    /// segments): its own vacuum keeps them.
    var pendingObjectNames: Set<String> {
        Set((pending.spilled + (flushing?.spilled ?? [])).map(\.object.name))
    }

    /// Writes not yet committed (rows added, replaced or deleted).
    public var pendingCount: Int { pending.count + (flushing?.count ?? 0) }

    /// Drops every write not yet committed (not one being committed right now) and returns how
    /// many there were: the way out of a `.conflict`, after which the handle can ``refresh()``
    /// and the caller re-apply what still makes sense.
    @discardableResult
    public func discardPending() throws -> Int {
        try checkWritable()
        let n = pending.count
        pending = PendingWrites(dimension: dimension, metric: metric)
        backgroundCommitError = nil  // its writes are gone with the rest
        spillError = nil
        return n
    }

    /// The committed version this handle sees (0 before the first commit).
    public var version: UInt64 { view.version }

    /// The next generated key, reserving a block of keys first when the lease is used up.
    private func generatedID() async throws -> UInt64 {
        if idLease.isEmpty {
            let size = config.idLeaseSize
            var reserved: Range<UInt64> = 0..<0
            try await commitManifest(label: "reserving \(size) keys") { base in
                var m = try self.template(base)
                let start = max(m.nextID, 1)
                reserved = start..<start + size
                m.nextID = start + size
                return NextVersion(manifest: m)
            }
            idLease = reserved
        }
        let id = idLease.lowerBound
        idLease = idLease.dropFirst()
        return id
    }

    /// The manifest of `base` to build the next one from (a fresh one for an empty database).
    nonisolated func template(_ base: VersionView) throws -> Manifest {
        base.manifest ?? Manifest(version: 0, parentVersion: 0, commitTimeMicros: 0, writerEpoch: 0, writerID: "",
                                  dimension: dimension, metric: metric.rawValue, nextID: 1, pkIndexObject: "",
                                  pkIndexSize: 0, segments: [])
    }

    /// Creates the next manifest after the newest version: `make` derives its content from the
    /// version it builds on; the version number, parent, time, writer and epoch are set here.
    /// When another writer created that version first, the newest version is re-read and
    /// `make` asked again at once. Nothing is ever overwritten: the manifest is created only if
    /// absent. The protocol's decisions are ``CommitMachine``'s; this performs its actions.
    ///
    /// - Throws: ``VecgoError`` `.fenced` when a newer exclusive writer took over, `.conflict`
    ///   when `make` finds one, `.timedOut` when `.commitTimeout` or `.commitAttempts` run out,
    ///   `.storage` otherwise.
    @discardableResult
    func commitManifest(label: String, _ make: (VersionView) async throws -> NextVersion) async throws -> Manifest {
        // One manifest commit at a time per handle: two interleaved ones would build on the
        // same version.
        await acquireManifestTurn()
        defer { releaseManifestTurn() }
        var policy = commitPolicy
        if fairness.winningBackToBack, fairness.othersAbout {
            // A quarter of maxCommitObjectAge at most: the pause must not age this commit's
            // objects toward vacuum's grace period (a test with 0.05 s / 0.5 s saw a segment
            // vacuumed while its writer paused).
            policy.yieldCeiling = min(fairness.lastCycle * 4, Self.fairnessMaxPause, .seconds(config.maxCommitObjectAge / 4))
        }
        var machine = CommitMachine(label: label, policy: policy, epoch: epoch, viewVersion: view.version,
                                    viewEpoch: view.manifest?.writerEpoch ?? 0, viewConfirmedAt: viewConfirmedAt,
                                    now: { ContinuousClock.now }, random: SystemRandomNumberGenerator())
        defer { viewConfirmedAt = max(viewConfirmedAt, machine.viewConfirmedAt) }
        var base = view
        var built = NextVersion(manifest: try template(base))
        var othersSeen = false, buildStart = ContinuousClock.now
        var lostTo: Manifest?  // the other writer's manifest a read-back found, the base of the next attempt
        var action = machine.start()
        while true {
            switch action {
            case .confirmView, .readLatest:
                let askedAt = ContinuousClock.now
                var after = view.version
                if case .readLatest(let v) = action { after = v }
                do {
                    if let latest = try await Self.latestManifest(cached, commits: commits, after: after, knownManifest: lostTo) {
                        advance(to: VersionView(latest, store: cached, metric: metric, previous: view))
                    }
                } catch {
                    action = machine.stepFailed(error)
                    continue
                }
                let (v, e) = (view.version, view.manifest?.writerEpoch ?? 0)
                action = action == .confirmView ? machine.viewConfirmed(version: v, writerEpoch: e, askedAt: askedAt)
                    : machine.latestRead(version: v, writerEpoch: e, askedAt: askedAt)
            case .build:
                base = view
                buildStart = ContinuousClock.now
                if let m = base.manifest, m.writerID != writerID { othersSeen = true }
                do {
                    built = try await make(base)
                } catch {
                    action = machine.stepFailed(error)
                    continue
                }
                built.manifest.version = base.version + 1
                built.manifest.parentVersion = base.version
                built.manifest.commitTimeMicros = max(Int64(Date().timeIntervalSince1970 * 1_000_000), (base.manifest?.commitTimeMicros ?? 0) + 1)
                built.manifest.writerID = writerID
                built.manifest.writerEpoch = max(built.manifest.writerEpoch, base.manifest?.writerEpoch ?? 0)
                action = machine.built()
            case .put:
                do {
                    let v = built.manifest.version
                    try await commits.commit(version: v, manifest: Manifest.objectName(version: v), try built.manifest.encode())
                    action = machine.putAnswered()
                } catch let e as StoreError {
                    action = machine.putFailed(e)
                } catch {
                    throw VecgoError.wrap(error, label)  // not sent (encoding failed, cancelled before sending)
                }
            case .readBack:
                // A retried create-if-absent whose first attempt landed also answers "exists",
                // and a failed one may have landed too: if the manifest there is this very one,
                // the commit succeeded. Not knowing is an error (retrying blindly could apply
                // this batch twice).
                do {
                    let existing = try await Self.committedManifest(version: built.manifest.version, cached, commits: commits)
                    if existing != built.manifest { othersSeen = true; lostTo = existing }
                    action = machine.readBack(existing == built.manifest ? .ours : .other(version: existing.version))
                } catch let e as VecgoError where e.code == .notFound {
                    action = machine.readBack(.missing)
                } catch {
                    action = machine.readBackFailed(error)
                }
            case .sleep(let d):
                do {
                    try await Task.sleep(for: d)
                    action = machine.slept()
                } catch {
                    action = machine.cancelled()
                }
            case .done:
                metrics.lostRaces(machine.racesLost, label: label, logger: config.logger)
                fairness.winningBackToBack = machine.racesLost == 0 && base.manifest?.writerID == writerID
                fairness.commitsSinceOthers = othersSeen ? 0 : fairness.commitsSinceOthers + 1
                if othersSeen { fairness.othersSeenAt = ContinuousClock.now }
                fairness.lastCycle = ContinuousClock.now - buildStart
                advance(to: VersionView(built.manifest, store: cached, metric: metric, previous: base, pk: built.pk,
                                        changes: built.live))
                return built.manifest
            case .fail(let error):
                throw error
            }
        }
    }

    /// What this handle's last commits tell about other writers (see ``CommitMachine/Policy/yieldCeiling``).
    struct Fairness {
        /// The last commit built on this handle's own previous version without losing a race.
        var winningBackToBack = false
        /// Commits of this handle since it last met a version of another writer.
        var commitsSinceOthers = Int.max / 2
        /// When this handle last met a version of another writer.
        var othersSeenAt: ContinuousClock.Instant?
        /// How long the last commit took from its last build to its version.
        var lastCycle: Duration = .zero

        /// Whether other writers were about lately: met within the last `fairnessWindow`
        /// commits or `fairnessWindowTime`. Both, because a writer the winner starves makes no
        /// version the winner could meet: a window of commits alone closes on it (seen in the
        /// soak: a writer out of time after losing 22 races in a row).
        var othersAbout: Bool {
            commitsSinceOthers < Vecgo.fairnessWindow
                || othersSeenAt.map { ContinuousClock.now - $0 < Vecgo.fairnessWindowTime } ?? false
        }
    }

    /// Commits after meeting another writer's version during which a writer winning back-to-back
    /// still pauses before building.
    static let fairnessWindow = 16
    /// The time after meeting another writer's version during which it still pauses (a writer
    /// alone stops pausing after both windows).
    static let fairnessWindowTime: Duration = .seconds(120)
    /// The longest pause (the pause is random, up to 4× the last commit's build-to-version time).
    static let fairnessMaxPause: Duration = .seconds(1)

    /// The limits of a commit, from the options.
    var commitPolicy: CommitMachine.Policy {
        CommitMachine.Policy(timeBudget: config.commitTimeout, maxAttempts: config.commitAttempts,
                             maxViewAge: .seconds(config.maxCommitObjectAge))
    }

    /// A pk-index name no other commit attempt uses (a put overwrites, so names must differ).
    nonisolated func pkIndexName(version: UInt64) -> String {
        "pkindex_\(Manifest.objectName(version: version).dropFirst(9).dropLast(4))-\(writerID)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).bin"
    }

    /// Writes the key index of the version `m` will become (`m.version + 1`, its segments) under
    /// a fresh name and points `m` at it: a delta layer holding only `changes` on top of the
    /// chain `m` has (its base's), or a full index of `index` (then the chain has one layer).
    /// The full index is written when there is no chain yet, when `changes` is nil (compaction),
    /// when the chain would grow past ``maxPKIndexLayers`` layers, or when its deltas would hold
    /// more than half as many entries as its full layer. Records each segment's dead-row count
    /// in `m` (readers skip the pk-index when no segment has dead rows): `deadRows` when the
    /// caller kept them up to date, else counted from `index`.
    ///
    /// - Parameters:
    ///   - index: the version's key index over `m.segments` (ordinals of `m.segments`).
    ///   - changes: what changed against the base: keys set (new locations, ordinals of
    ///     `m.segments`) and keys removed; nil when a full index must be written.
    ///   - base: the base version's key index and layer sizes (nil for none).
    /// - Returns: the key index of the new version, for its view.
    nonisolated func writePKIndex(_ index: PKIndex, changes: PKChanges?, base: PKChain?, deadRows: [UInt64]?,
                      into m: inout Manifest) async throws -> PKChain {
        let next = m.version + 1
        let baseLayers = m.pkIndexLayers
        let name = pkIndexName(version: next)
        let names = m.segments.map(\.name)
        let chain: PKChain
        let bytes: [UInt8]
        if let changes, let base, !baseLayers.isEmpty, baseLayers.count < Self.maxPKIndexLayers,
           2 * (base.deltaEntries + changes.size) <= base.fullEntries {
            // The delta names only the segments its entries point into, in the manifest's order.
            let used = Set(changes.assigned.values.map(\.segment)).sorted()
            let local = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, UInt32($0)) })
            let entries = changes.assigned.mapValues { PKIndex.Location(segment: local[$0.segment]!, row: $0.row) }
            bytes = try PKIndex(version: next, segments: used.map { names[Int($0)] }, entries: entries,
                                tombstones: changes.removed.sorted(), kind: .delta).encode()
            m.pkIndexBaseLayers = baseLayers
            chain = PKChain(index: index, fullEntries: base.fullEntries, deltaEntries: base.deltaEntries + changes.size)
        } else {
            bytes = try PKIndex(version: next, segments: names, entries: index.entries).encode()
            m.pkIndexBaseLayers = []
            chain = PKChain(index: index, fullEntries: index.entries.count, deltaEntries: 0)
        }
        try await remote.put(name, bytes)
        m.pkIndexObject = name
        m.pkIndexSize = UInt64(bytes.count)
        var dead = deadRows ?? []
        if deadRows == nil {
            var live = [UInt64](repeating: 0, count: m.segments.count)
            for loc in index.entries.values where Int(loc.segment) < live.count { live[Int(loc.segment)] += 1 }
            dead = zip(m.segments, live).map { $0.rowCount - min($1, $0.rowCount) }
        }
        for i in m.segments.indices { m.segments[i].deadRows = min(dead[i], m.segments[i].rowCount) }
        var result = chain
        result.index.version = next
        result.index.segments = names
        return result
    }

    /// The key index of the version `m` becomes once `deletes` and then `segments` (appended to
    /// `m.segments` here) apply on top of `base`, the base's key index; the keys changed, the
    /// rows killed and added, and each segment's dead rows (nil when the base has no counts).
    /// Off the actor: it copies and updates the whole key → row map.
    @concurrent
    nonisolated static func applyBatch(deletes: Set<UInt64>, segments: [(ref: SegmentRef, liveRows: [UInt64: Int])],
                                       base: PKIndex?, into m: inout Manifest) async
        -> (pk: PKIndex, changes: PKChanges, live: LiveChanges, dead: [UInt64]?) {
        var pk = base ?? PKIndex(version: 0, segments: [], entries: [:])
        // Dead rows follow from the base's counts and the old locations of the keys this
        // commit changes (counted from the whole index only when the base has no counts).
        var dead: [UInt64]? = m.segments.allSatisfy { ($0.deadRows ?? .max) < UInt64(UInt32.max) }
            ? m.segments.map { $0.deadRows! } : nil
        var changes = PKChanges()
        var live = LiveChanges()
        for k in deletes {
            guard let old = pk.entries.removeValue(forKey: k) else { continue }  // nothing to delete
            changes.removed.append(k)
            live.died.append(old)
            dead?[Int(old.segment)] += 1
        }
        for (ref, liveRows) in segments {
            m.segments.append(ref)
            dead?.append(ref.rowCount - UInt64(liveRows.count))  // a graph segment keeps rows replaced in the batch
            let ordinal = UInt32(m.segments.count - 1)
            changes.assigned.reserveCapacity(changes.assigned.count + liveRows.count)
            for (k, row) in liveRows {
                let loc = PKIndex.Location(segment: ordinal, row: UInt32(row))
                if let old = pk.entries.updateValue(loc, forKey: k) {
                    live.died.append(old)
                    dead?[Int(old.segment)] += 1
                }
                changes.assigned[k] = loc
                live.born.append(loc)
            }
        }
        return (pk, changes, live, dead)
    }

    /// The most layers a pk-index chain gets before a commit writes a full index again.
    static let maxPKIndexLayers = 16

    /// Moves this handle's view forward, never back.
    func advance(to newer: VersionView) {
        if newer.version > view.version { view = newer }
    }

    private func acquireManifestTurn() async {
        guard manifestBusy else {
            manifestBusy = true
            return
        }
        await withCheckedContinuation { manifestWaiters.append($0) }  // handed the turn by release
    }

    private func releaseManifestTurn() {
        if manifestWaiters.isEmpty {
            manifestBusy = false
        } else {
            manifestWaiters.removeFirst().resume()
        }
    }

    /// A segment this writer wrote for a commit not yet published.
    struct OwnObject: Sendable {
        var name: String
        let bytes: [UInt8]
        var written: ContinuousClock.Instant
    }

    /// Writes a new segment object under a name no one else uses.
    func writeOwnSegment(_ bytes: [UInt8], tag: String = "") async throws -> OwnObject {
        segmentSequence += 1
        let name = "segment_\(writerID)-\(tag)\(segmentSequence).bin"
        let written = ContinuousClock.now
        try await remote.put(name, bytes)
        return OwnObject(name: name, bytes: bytes, written: written)
    }

    /// Vacuum deletes unreferenced objects older than its grace period, and an object waiting
    /// for its manifest is unreferenced. So a commit never publishes an object older than
    /// `maxCommitObjectAge`: at each build, one older than half of it is written again under a
    /// new name (which no vacuum that listed before can have seen), which leaves the other half
    /// for the build and the put. The time from build to put is not bounded (README, "Not done
    /// yet"). Returns whether it was renamed.
    func keepFresh(_ object: inout OwnObject) async throws -> Bool {
        guard ContinuousClock.now - object.written > .seconds(config.maxCommitObjectAge / 2) else { return false }
        let bytes = object.bytes.isEmpty ? try await remote.read(object.name) : object.bytes  // not kept: read back
        let renamed = try await writeOwnSegment(bytes, tag: object.name.contains("-c") ? "c" : "")
        object = OwnObject(name: renamed.name, bytes: object.bytes, written: renamed.written)
        return true
    }

    /// Makes every pending write durable as one new version.
    ///
    /// The segment (new rows) is written first under a name unique to this writer; then, for
    /// the newest version, a pk-index layer (the keys this commit changed, on top of that
    /// version's layers; now and then the whole key → row map) and the manifest, which is
    /// created only if absent. When another writer committed first the commit re-reads the
    /// winner and builds on it: new rows and changes to keys the winner did not touch merge;
    /// an upsert or delete of a key the winner also changed throws `.conflict`, and every
    /// pending write stays in this handle.
    ///
    /// - Returns: the version now committed (unchanged when nothing was pending).
    @discardableResult
    public func commit() async throws -> UInt64 {
        try checkWritable()
        while commitTask != nil || spilling {  // one commit at a time, and never during a spill
            if let running = commitTask { _ = try? await running.value } else { await waitWhileSpilling() }
        }
        guard !pending.isEmpty else { return version }
        // The batch leaves `pending` now, so writes made while it is published are the next
        // commit's; if publishing fails they are merged back on top of it.
        let batch = pending
        pending = PendingWrites(dimension: dimension, metric: metric)
        flushing = batch
        // The whole commit, state changes included, runs in one task on this actor: when its
        // value is ready, `commitTask` is already cleared for the next commit.
        let rows = batch.count
        let task = Task { () async throws -> UInt64 in
            defer {
                self.flushing = nil
                self.commitTask = nil
            }
            do {
                let v: UInt64
                do { v = try await self.publish(batch) } catch {
                    self.metrics.commitEnded(.failure(error), rows: rows, logger: self.config.logger)
                    throw error
                }
                self.metrics.commitEnded(.success(v), rows: rows, logger: self.config.logger)
                let published = self.view  // no await since publish: this is the version it made
                self.backgroundCommitError = nil
                self.spillError = nil
                await self.rebaseTouches(committedOn: self.builtOn, published: published)
                return v
            } catch {
                self.pending = batch.merged(with: self.pending)
                throw error
            }
        }
        commitTask = task
        return try await task.value
    }

    /// Writes made while the last commit was in flight were checked against the view before
    /// it. When no other writer changed their keys up to the version that commit built on,
    /// move them to the new view, so this handle's own commit is not taken for a conflict.
    private func rebaseTouches(committedOn base: VersionView?, published: VersionView) async {
        guard let base, let observed = pending.touchedView, observed.version < published.version else { return }
        if observed.version != base.version {
            let changed: UInt64?
            do { changed = try await Self.firstChangedKey(pending.touched, from: observed, to: base) } catch { return }
            guard changed == nil else { return }
        }
        // `published` was captured before any await: the view may have moved on since, past
        // commits of others that these keys were not checked against.
        if pending.touchedView === observed { pending.touchedView = published }
    }

    /// The first of `keys` whose row differs between two versions: a different row (added,
    /// deleted or replaced). A row that only moved (a compaction copied it) is the same row.
    static func firstChangedKey(_ keys: Set<UInt64>, from old: VersionView, to new: VersionView) async throws -> UInt64? {
        let before = try await old.pk()?.entries ?? [:], after = try await new.pk()?.entries ?? [:]
        for k in keys where before[k] != after[k] {
            guard let a = before[k], let b = after[k] else { return k }
            if old.segments[Int(a.segment)].ref.name == new.segments[Int(b.segment)].ref.name {
                if a.row == b.row { continue }  // the same row; only the segment's ordinal moved
                return k
            }
            let ra = try await old.segments[Int(a.segment)].rows([Int(a.row)], include: .all)[Int(a.row)]
            let rb = try await new.segments[Int(b.segment)].rows([Int(b.row)], include: .all)[Int(b.row)]
            guard let ra, let rb, ra.0 == rb.0, ra.1 == rb.1, ra.2 == rb.2 else { return k }
        }
        return nil
    }

    /// Writes `batch` as the next version (see ``commit()``): its rows written out before
    /// (spills) and its memtable's, as segments, then the manifest that publishes them all.
    private func publish(_ batch: PendingWrites) async throws -> UInt64 {
        do {
            var segments: [(ref: SegmentRef, liveRows: [UInt64: Int], object: OwnObject)] =
                batch.spilled.filter { !$0.liveRows.isEmpty }.map { ($0.ref, $0.liveRows, $0.object) }
            if batch.memtable.liveCount > 0 { segments.append(try await buildSegment(batch.memtable)) }
            let deletes = batch.deletes, touched = batch.touched, observed = batch.touchedView
            try await commitManifest(label: "committing") { base in
                self.builtOn = base
                var m = try self.template(base)
                let chain = try await base.pkChain()
                if !touched.isEmpty, let observed, observed.version != base.version,
                   let k = try await Self.firstChangedKey(touched, from: observed, to: base) {
                    throw VecgoError(.conflict, "key \(k) was changed by another writer after this handle read version \(observed.version) (now \(base.version)); the pending writes are kept: discardPending() and re-apply them, or retry later")
                }
                // The batch's segments: rows written out before the commit (oldest first), then
                // the memtable's; a key is live in one of them at most.
                for i in segments.indices {
                    if try await self.keepFresh(&segments[i].object) { segments[i].ref.name = segments[i].object.name }
                }
                let (pk, changes, live, dead) = await Self.applyBatch(deletes: deletes, segments: segments.map { ($0.ref, $0.liveRows) },
                                                                      base: chain?.index, into: &m)
                let built = try await self.writePKIndex(pk, changes: changes, base: chain, deadRows: dead, into: &m)
                return NextVersion(manifest: m, pk: built, live: live)
            }
            // The new view holds these rows now: stop searching the batch in the same turn.
            flushing = nil
            return version
        } catch {
            throw VecgoError.wrap(error, "committing")
        }
    }

    /// Commits pending writes (on a writer), waits for the disk cache to settle, and closes the
    /// handle. Closing twice is allowed.
    public func close() async throws {
        guard !closed else { return }
        closing = true  // writes are refused from here on, so none can slip in after the commit
        refresher?.cancel()
        _ = await refresher?.value
        if !isReadOnly {
            do { try await commit() } catch {
                closing = false  // the writes are still pending: the caller may retry
                throw error
            }
        }
        await view.settle()
        await cached.disk?.flush()
        closed = true
    }

    // MARK: reads

    /// The `k` nearest live rows to `query` over committed and pending data, nearest first.
    ///
    /// Rows replaced by an upsert or removed by a delete are never returned, whether the
    /// change is committed or pending. With a `filter`, only rows whose metadata match are
    /// considered, and `k` results come back whenever `k` matching rows exist: selective
    /// filters scan the matching rows exactly, others search the graph or the IVF partitions
    /// with the filter as a bitmap and widen the search when it finds too few.
    ///
    /// - Throws: ``VecgoError``: `.dimensionMismatch`, `.invalidArgument` (NaN, k ≤ 0 or k > 10000),
    ///   `.corrupted` when a segment is damaged, `.storage` when the store fails.
    public func search(_ query: [Float], k: Int, filter: Filter? = nil, include: Include = [],
                       options: SearchOptions = SearchOptions()) async throws -> [SearchResult] {
        try checkOpen()
        let started = ContinuousClock.now
        defer { metrics.queryEnded(started: started) }
        try validate(query, what: "query")
        guard k >= 1, k <= 10_000 else { throw VecgoError(.invalidArgument, "k must be in 1...10000, got \(k)") }
        let q = normalizedIfCosine(query)
        let view = self.view
        // Keys changed since the last commit: their committed rows are hidden. Asking each
        // segment for that many more keeps k results after hiding them.
        let pending = self.pending, flushing = self.flushing
        let hidden = pending.touched.union(flushing?.touched ?? [])
        let perSegment = k + hidden.count
        var top = TopK(k: k)
        // Pending rows written out as segments are searched with the committed ones: their
        // live rows only, and those of a commit in flight unless rewritten or deleted since.
        let newer = flushing == nil ? [] : pending.keys
        if !pending.memtable.isEmpty || !(flushing?.memtable.isEmpty ?? true) {
            let hits = await Self.memtableHits(q, k: k, ef: options.ef, filter: filter, pending: pending.memtable,
                                               flushing: flushing?.memtable, newer: newer)
            for n in hits { top.offer(n) }
        }
        var spills = pending.spilled.map { (spill: $0, hide: Set<UInt64>()) }
        if let flushing { spills += flushing.spilled.map { ($0, newer) } }
        var origin: [UInt64: (segment: Int, row: Int)] = [:]  // where each committed hit lives
        do {
            let live = try await view.live()
            // Each segment answers with exact hits or, IVF segments with codes, with candidates;
            // the candidates of all segments are then re-ranked together, so the exact reads go
            // to the best rows overall, however many segments there are.
            var candidates: [(segment: Int, candidate: CodeCandidate)] = []
            // The committed segments, then the spilled ones; a segment's hits are hidden when a
            // newer pending write replaced their keys.
            let readers = view.segments + spills.map(\.spill.reader)
            let hiddenIn = Array(repeating: hidden, count: view.segments.count) + spills.map(\.hide)
            let liveIn = live + spills.map(\.spill.allowed)
            let totalRows = readers.reduce(UInt64(0)) { $0 + $1.ref.rowCount }
            func offer(_ segment: Int, _ hits: [SegmentHit]) {
                for h in hits where hiddenIn[segment].isEmpty || !hiddenIn[segment].contains(h.id) {
                    top.offer(Neighbor(id: h.id, distance: h.distance))
                    if !include.isEmpty { origin[h.id] = (segment, h.row) }  // only `resolve` needs it
                }
            }
            try await withThrowingTaskGroup(of: (Int, SegmentAnswer).self) { group in
                for (i, s) in readers.enumerated() {
                    group.addTask {
                        var allowed = liveIn[i]
                        if let filter {
                            let matching = filter.bitmap(try await s.metadata(), rows: Int(s.ref.rowCount))
                            allowed = allowed.map { $0.intersection(matching) } ?? matching
                        }
                        return (i, try await s.answer(q, k: perSegment, options: options, allowed: allowed, totalRows: totalRows))
                    }
                }
                for try await (segment, answer) in group {
                    switch answer {
                    case .hits(let hits): offer(segment, hits)
                    case .candidates(let found):
                        let hide = hiddenIn[segment]
                        for c in found where hide.isEmpty || !hide.contains(c.key) { candidates.append((segment, c)) }
                    }
                }
            }
            if !candidates.isEmpty {
                let chosen = SegmentReader.rerankSet(candidates, k: perSegment, rerank: options.rerank, exact: top.sorted().map(\.distance))
                let bySegment = Dictionary(grouping: chosen, by: \.segment)
                try await withThrowingTaskGroup(of: (Int, [SegmentHit]).self) { group in
                    for (segment, list) in bySegment {
                        let reader = readers[segment]
                        group.addTask { (segment, try await reader.rerank(q, list.map(\.candidate))) }
                    }
                    for try await (segment, hits) in group { offer(segment, hits) }
                }
            }
            let hits = top.sorted()
            guard !include.isEmpty else { return hits.map { SearchResult(id: $0.id, distance: $0.distance) } }
            return try await resolve(hits, include: include, view: view, readers: readers, pending: pending, flushing: flushing,
                                     origin: origin)
        } catch {
            throw VecgoError.wrap(error, "searching version \(view.version)")
        }
    }

    /// The hits among pending rows: the memtable's, and those of the memtable of a commit in
    /// flight (`flushing`) unless rewritten or deleted since (`newer`). Runs off the actor: a
    /// memtable search may add rows to its graph, or scan rows a segment build is still adding.
    @concurrent
    nonisolated static func memtableHits(_ q: [Float], k: Int, ef: Int, filter: Filter?, pending: Memtable,
                                         flushing: Memtable?, newer: Set<UInt64>) async -> [Neighbor] {
        var hits = pending.search(q, k: k, ef: max(ef, k), filter: filter)
        if let flushing {
            let wide = k + newer.count
            hits += flushing.search(q, k: wide, ef: max(ef, wide), filter: filter).filter { !newer.contains($0.id) }
        }
        return hits
    }

    /// Fills in what `include` asks for: from the memtable for pending rows, else from the
    /// segment row the search found (`origin`; no pk-index needed).
    private func resolve(_ hits: [Neighbor], include: Include, view: VersionView, readers: [SegmentReader], pending: PendingWrites,
                         flushing: PendingWrites?, origin: [UInt64: (segment: Int, row: Int)]) async throws -> [SearchResult] {
        var results = hits.map { SearchResult(id: $0.id, distance: $0.distance) }
        var wanted: [Int: [(result: Int, row: Int)]] = [:]
        for (i, h) in hits.enumerated() {
            // A hit from a segment (committed, or pending rows written out) is read from the row
            // it came from: the memtable of a commit in flight may hold an older row of its key.
            if origin[h.id] == nil, let row = pending.memtable.row(id: h.id) ?? flushing?.memtable.row(id: h.id) {
                if include.contains(.metadata) { results[i].metadata = row.metadata }
                if include.contains(.payload) { results[i].payload = row.payload }
                if include.contains(.vector) { results[i].vector = row.vector }
            } else if let at = origin[h.id] {
                wanted[at.segment, default: []].append((i, at.row))
            } else {
                throw VecgoError(.corrupted, "key \(h.id) came back from version \(view.version) without the row it came from")
            }
        }
        for (segment, list) in wanted {
            let rows = try await readers[segment].rows(list.map(\.row), include: include)
            for (i, row) in list {
                guard let (m, p, v) = rows[row] else { continue }
                results[i].metadata = m
                results[i].payload = p
                results[i].vector = v
            }
        }
        return results
    }

    /// Loads segments of the current version into the cache tiers ahead of queries, in
    /// parallel: the ones named (as `segment_….bin`, see ``segmentNames``), or all of them.
    /// Data goes into RAM up to its budget and into the disk cache when there is one; a graph
    /// segment's graph is loaded into memory. Returns the bytes of the segments warmed.
    ///
    /// - Throws: ``VecgoError``: `.notFound` for a name not in this version, `.storage` or
    ///   `.corrupted` when a read fails.
    @discardableResult
    public func warm(segments names: [String]? = nil) async throws -> UInt64 {
        try checkOpen()
        let segments = view.segments
        let chosen: [SegmentReader]
        if let names {
            let byName = Dictionary(segments.map { ($0.ref.name, $0) }, uniquingKeysWith: { a, _ in a })
            chosen = try names.map { name throws(VecgoError) in
                guard let s = byName[name] else {
                    throw VecgoError(.notFound, "segment '\(name)' is not part of version \(version)")
                }
                return s
            }
        } else {
            chosen = segments
        }
        do {
            return try await withThrowingTaskGroup(of: UInt64.self) { group in
                for s in chosen { group.addTask { try await s.warm() } }
                return try await group.reduce(0, +)
            }
        } catch {
            throw VecgoError.wrap(error, "warming version \(version)")
        }
    }

    /// The segment objects of the version this handle sees.
    public var segmentNames: [String] { view.segments.map(\.ref.name) }

    /// Searches like ``search(_:k:filter:include:options:)`` and reports what this query
    /// cost: blocks served by RAM and disk, requests and bytes sent to the store, and its latency.
    public func searchWithStats(_ query: [Float], k: Int, filter: Filter? = nil, include: Include = [],
                                options: SearchOptions = SearchOptions()) async throws -> ([SearchResult], QueryStats) {
        let counters = QueryCounters()
        let clock = ContinuousClock()
        let start = clock.now
        let results = try await TierStats.$query.withValue(counters) {
            try await search(query, k: k, filter: filter, include: include, options: options)
        }
        let d = clock.now - start
        let micros = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
        return (results, QueryStats(tiers: counters.snapshot(), latencyMicros: micros))
    }

    /// Moves this handle to the newest committed version (a whole version: never part of a
    /// commit). Returns the version now seen.
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` on a writer with pending writes or a handle
    ///   opened at a past version.
    @discardableResult
    public func refresh() async throws -> UInt64 {
        try checkOpen()
        guard config.atVersion == nil, config.asOf == nil else {
            throw VecgoError(.invalidArgument, "this handle was opened at a past version and stays there; open another to see the newest")
        }
        guard isReadOnly || (pending.isEmpty && flushing == nil) else {
            throw VecgoError(.invalidArgument, "commit pending writes before refreshing a writer")
        }
        let latest: Manifest?
        let askedAt = ContinuousClock.now
        do { latest = try await Self.latestManifest(cached, commits: commits, after: version) } catch { throw VecgoError.wrap(error, "refreshing") }
        viewConfirmedAt = askedAt
        if let latest, latest.version > version {
            view = VersionView(latest, store: cached, metric: metric, previous: view)
        }
        return version
    }

    /// The version this handle sees: its number, commit time, segments and committed rows
    /// (version 0, no segments, for a database with no commit yet).
    public var versionInfo: VersionInfo {
        let m = view.manifest
        return VersionInfo(version: m?.version ?? 0,
                           commitTime: Date(timeIntervalSince1970: Double(m?.commitTimeMicros ?? 0) / 1e6),
                           segments: m?.segments.count ?? 0, rows: m?.segments.reduce(0) { $0 + $1.rowCount } ?? 0,
                           writerEpoch: m?.writerEpoch ?? 0)
    }

    /// The cache counters of this handle since it opened.
    public func tierCounters() -> TierCounters { cached.stats.snapshot() }

    /// Bytes of decoded segment parts (graphs, flat rows, metadata) this handle keeps for warm
    /// queries; at most ``OpenOption/decodedCacheSize(_:)``.
    public func decodedBytes() -> Int { view.budget?.bytes ?? 0 }

    // MARK: checks

    func checkOpen() throws(VecgoError) {
        guard !closed else { throw VecgoError(.closed, "this handle is closed") }
    }

    /// Writable, and not closing.
    func checkAcceptingWrites() throws(VecgoError) {
        try checkWritable()
        guard !closing else { throw VecgoError(.closed, "this handle is closing; writes are no longer accepted") }
        // Memory stays bounded: after a failed background commit, writes stop at twice the budget.
        if let budget = config.memtableBudget, let failed = backgroundCommitError, pending.memtable.count >= 2 * budget {
            throw VecgoError(failed.code, "\(pending.memtable.count) rows are pending and the background commit failed (\(failed.message)); call commit() to retry, or discardPending()", underlying: failed)
        }
        if let failed = spillError, pending.memtable.count * dimension * 4 >= 2 * config.maxSegmentBytes {
            throw VecgoError(failed.code, "\(pending.memtable.count) rows are pending and writing them out failed (\(failed.message)); call commit() to retry, or discardPending()", underlying: failed)
        }
    }

    func checkWritable() throws(VecgoError) {
        try checkOpen()
        guard !isReadOnly else {
            throw VecgoError(.readOnly, "this handle was opened read-only; open a writer (without .readOnly) to write")
        }
    }

    private func validate(_ v: [Float], what: String) throws(VecgoError) {
        guard v.count == dimension else {
            throw VecgoError(.dimensionMismatch, "\(what) has \(v.count) dimensions, the database has \(dimension)")
        }
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw VecgoError(.invalidArgument, "\(what) element \(i) is \(v[i]); every element must be finite")
        }
    }
}
