// Vecgo, the façade: its state, opening and closing a handle, and the checks every call makes.
// The work is in named parts: Versions, Writes, Committer, Queries and Maintenance.
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
    var pending: PendingWrites
    /// Writes a commit in progress is publishing: still searched, put back if it fails.
    var flushing: PendingWrites?
    /// The rows newer writes hide (committed ones, a commit in flight's), as the last search
    /// computed them (nil when nothing is pending); a search extends them with the keys written since.
    var hiddenRows: HiddenRows?
    /// The commit in progress (commits of one handle run one at a time).
    var commitTask: Task<UInt64, any Error>?
    /// The version the last successful commit was built on.
    var builtOn: VersionView?
    /// When this handle last learned that its view was the newest version (opening, a
    /// refresh, a commit). A commit builds only on a view confirmed within
    /// `maxCommitObjectAge`: vacuum frees version numbers only after its longer grace
    /// period, so the number after a recently confirmed view can never have been freed.
    var viewConfirmedAt = ContinuousClock.now
    /// What the last commits tell about other writers, for fair turns (``commitManifest(label:_:)``).
    var fairness = Fairness()
    /// Whether pending rows are being written out as a segment (``spillIfFull()``); writes wait.
    var spilling = false
    var spillWaiters: [CheckedContinuation<Void, Never>] = []
    /// Why writing pending rows out last failed, if it did: the rows stay in the memtable (the
    /// next commit writes them), no spill is tried again until a commit or ``discardPending()``,
    /// and writes are refused from twice `.maxSegmentBytes` on.
    var spillError: VecgoError?
    var manifestBusy = false
    var manifestWaiters: [CheckedContinuation<Void, Never>] = []
    /// Set by ``close()``: writes are refused from then on.
    var closing = false
    /// Why the last background flush (``OpenOption/memtableBudget(_:)``) failed, if it did;
    /// its writes are pending again.
    public internal(set) var backgroundCommitError: VecgoError?
    /// Generated keys this writer may hand out, reserved by a commit of its own.
    var idLease: Range<UInt64> = 0..<0
    /// The writer epoch this handle writes under; a manifest with a higher one fences it.
    var epoch: UInt64
    var segmentSequence = 0
    var closed = false
    var refresher: Task<Void, Never>?
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

    func startRefreshing(every seconds: Double) {
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
    func takeOver() async throws {
        epoch = .max  // the newest epoch, whatever it is now, is the one this writer supersedes
        let claimed = try await commitManifest(label: "taking over as the exclusive writer") { base in
            var m = try self.template(base)
            m.writerEpoch += 1
            return NextVersion(manifest: m)
        }
        epoch = claimed.writerEpoch
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

    func validate(_ v: [Float], what: String) throws(VecgoError) {
        guard v.count == dimension else {
            throw VecgoError(.dimensionMismatch, "\(what) has \(v.count) dimensions, the database has \(dimension)")
        }
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw VecgoError(.invalidArgument, "\(what) element \(i) is \(v[i]); every element must be finite")
        }
    }
}
