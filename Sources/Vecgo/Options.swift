// Where a database lives (`Backend`) and the options of `Vecgo.open` with their defaults.
public import Foundation
public import IndexCore
public import Logging
public import Stores
import Tiering

/// Where a database lives.
public enum Backend: Sendable {
    /// Any object store: S3, S3 Express, MinIO, a local directory, memory.
    case remote(any BlobStore)
    /// A local directory used as an object store.
    case directory(String)
}

/// Options of ``Vecgo/open(_:_:)``.
public enum OpenOption: Sendable {
    /// Create the database when none exists (an existing one must have the same dimension and metric).
    case create(dimension: Int, metric: Metric)
    /// Open read-only: every mutating call throws ``VecgoError/Code-swift.struct/readOnly``.
    case readOnly
    /// Keep a persistent disk cache (4 MiB blocks) in this directory.
    case cacheDirectory(String)
    /// The RAM block cache budget in bytes (default 256 MiB).
    case blockCacheSize(Int)
    /// The disk cache size limit in bytes (default 10 GiB).
    case diskCacheSize(Int)
    /// The memory budget in bytes for decoded segment parts kept for warm queries — graphs
    /// with their vectors, flat rows, metadata (default 1 GiB). Least recently used parts are
    /// dropped beyond it and decoded again from the block cache when needed.
    case decodedCacheSize(Int)
    /// Commits of at least this many rows write IVF segments (partitions stored contiguously, for
    /// cold reads); smaller ones write flat or graph segments. Default 50 000; see also
    /// ``ivfThresholdBytes(_:)``.
    case ivfThreshold(Int)
    /// Commits whose vectors take at least this many bytes write IVF segments, whatever their
    /// row count: graph and flat segments are downloaded whole by a reader's first search, so
    /// they stay below this size. Default 1 MiB (about 2 700 rows at 96 dimensions, 340 at 768).
    case ivfThresholdBytes(Int)
    /// Open the database as it was at this version (read-only; time travel).
    case atVersion(UInt64)
    /// Open the database as it was at this moment: the newest version committed at or before
    /// it (read-only; time travel).
    case asOf(Date)
    /// Take over as the only writer: the open commits a new writer epoch, and from then on
    /// commits of writers opened earlier fail with `.fenced`.
    case exclusiveWriter
    /// A reader moves to the newest version by itself at this interval, in seconds.
    case refreshInterval(Double)
    /// Generated keys are reserved this many at a time (one small commit per reservation) so
    /// concurrent writers never hand out the same key. Default 65 536.
    case idLeaseSize(Int)
    /// The most bytes of vectors one segment holds. A writer whose pending rows reach it writes
    /// them out as a segment at once (uploaded and searched, published by the next commit with
    /// everything else, atomically), so commits of any size run in bounded memory; compaction
    /// writes segments of at most this size. Default 256 MiB.
    case maxSegmentBytes(Int)
    /// Commit in the background whenever this many rows are pending (writers keep writing into
    /// a new memtable meanwhile). Off by default: writes wait for ``Vecgo/commit()`` or
    /// ``Vecgo/close()``.
    case memtableBudget(Int)
    /// The longest a commit may take before it writes its segment again under a new name, in
    /// seconds (default 600). Keep it well under the grace period of ``Vecgo/vacuum(retainVersions:gracePeriod:)``
    /// (default 3600): vacuum may delete unreferenced objects older than that, and a segment
    /// waiting for its manifest is unreferenced.
    case maxCommitObjectAge(Double)
    /// The most manifest puts one commit makes (races lost to other writers, puts that did not
    /// land) before it gives up with `.timedOut` (pending writes kept). Default 1 000 000: a
    /// commit is bounded by ``commitTimeout(_:)``; this is an additional cap.
    case commitAttempts(Int)
    /// The longest one commit may take, racing other writers and riding out a throttling store,
    /// before it gives up with `.timedOut` (nothing published, pending writes kept). Losing a
    /// race on disjoint keys is retried at once; only throttling waits. Default 120 seconds.
    case commitTimeout(Duration)
    /// Where warnings go: disk cache faults (a full, read-only or vanished cache directory) and
    /// cached bytes evicted because they failed a checksum (object and range, never a secret).
    /// Silent by default.
    case logger(Logger)
    /// Who decides which versions exist (the commit point of every commit, and the newest
    /// version when it keeps its own record): a `ConditionalPutCommitStore` (create-if-absent
    /// of the manifest object: S3, S3 Express, MinIO, local directories, memory), a
    /// `DynamoDBCommitStore`, or your own `CommitStore`. Default: the backend store's
    /// `BlobStore/commitStore` (conditional put on the store itself; a `DynamoDBCommitStore`
    /// used as the store is its own commit store).
    case commitStore(any CommitStore)
}

/// The validated configuration an open handle runs with.
struct Configuration: Sendable {
    var create: (dimension: Int, metric: Metric)?
    var readOnly = false
    var cacheDirectory: String?
    var blockCacheSize = 256 << 20
    var diskCacheSize = 10 << 30
    var decodedCacheSize = 1 << 30
    var ivfThreshold = 50_000
    var ivfThresholdBytes = 1 << 20
    var maxSegmentBytes = 256 << 20
    var atVersion: UInt64?
    var asOf: Date?
    var exclusiveWriter = false
    var refreshInterval: Double?
    var idLeaseSize: UInt64 = 65_536
    var commitAttempts = 1_000_000
    var commitTimeout: Duration = .seconds(120)
    var maxCommitObjectAge = 600.0
    var memtableBudget: Int?
    var logger = Logger.silent
    var commitStore: (any CommitStore)?

    init(_ options: [OpenOption]) throws(VecgoError) {
        for o in options {
            switch o {
            case .create(let d, let m):
                guard d >= 1, d <= 65_536 else {
                    throw VecgoError(.invalidArgument, "dimension \(d) is outside 1...65536")
                }
                create = (d, m)
            case .readOnly: readOnly = true
            case .cacheDirectory(let p):
                guard !p.isEmpty else { throw VecgoError(.invalidArgument, "the cache directory path is empty") }
                cacheDirectory = p
            case .blockCacheSize(let n):
                guard n >= 0 else { throw VecgoError(.invalidArgument, "blockCacheSize \(n) is negative") }
                blockCacheSize = n
            case .diskCacheSize(let n):
                guard n > 0 else { throw VecgoError(.invalidArgument, "diskCacheSize \(n) must be positive") }
                diskCacheSize = n
            case .decodedCacheSize(let n):
                guard n >= 0 else { throw VecgoError(.invalidArgument, "decodedCacheSize \(n) is negative") }
                decodedCacheSize = n
            case .ivfThreshold(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "ivfThreshold \(n) must be positive") }
                ivfThreshold = n
            case .ivfThresholdBytes(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "ivfThresholdBytes \(n) must be positive") }
                ivfThresholdBytes = n
            case .maxSegmentBytes(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "maxSegmentBytes \(n) must be positive") }
                maxSegmentBytes = n
            case .atVersion(let v):
                guard v >= 1 else { throw VecgoError(.invalidArgument, "versions start at 1, asked for \(v)") }
                atVersion = v
                readOnly = true
            case .asOf(let d):
                asOf = d
                readOnly = true
            case .exclusiveWriter: exclusiveWriter = true
            case .refreshInterval(let t):
                guard t > 0, t.isFinite else { throw VecgoError(.invalidArgument, "refreshInterval \(t) must be a positive number of seconds") }
                refreshInterval = t
            case .idLeaseSize(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "idLeaseSize \(n) must be positive") }
                idLeaseSize = UInt64(n)
            case .memtableBudget(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "memtableBudget \(n) must be positive") }
                memtableBudget = n
            case .maxCommitObjectAge(let t):
                guard t > 0, t.isFinite else { throw VecgoError(.invalidArgument, "maxCommitObjectAge \(t) must be a positive number of seconds") }
                maxCommitObjectAge = t
            case .logger(let l): logger = l
            case .commitStore(let c): commitStore = c
            case .commitAttempts(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "commitAttempts \(n) must be positive") }
                commitAttempts = n
            case .commitTimeout(let d):
                guard d > .zero else { throw VecgoError(.invalidArgument, "commitTimeout \(d) must be positive") }
                commitTimeout = d
            }
        }
        if atVersion != nil && asOf != nil {
            throw VecgoError(.invalidArgument, ".atVersion and .asOf cannot be combined")
        }
        if (atVersion != nil || asOf != nil) && (create != nil || exclusiveWriter) {
            throw VecgoError(.invalidArgument, "a handle opened at a past version is read-only: it cannot create or take over a database")
        }
        if exclusiveWriter && readOnly {
            throw VecgoError(.invalidArgument, ".exclusiveWriter and .readOnly cannot be combined")
        }
        if refreshInterval != nil && !readOnly {
            throw VecgoError(.invalidArgument, ".refreshInterval is for read-only handles; a writer moves forward when it commits")
        }
        if readOnly && create != nil {
            throw VecgoError(.invalidArgument, ".create and .readOnly cannot be combined: a read-only handle cannot create a database")
        }
    }
}

extension Configuration {
    /// The layout a commit or compaction of `rows` live rows writes.
    func layout(rows: Int, dimension: Int) -> SegmentLayout {
        SegmentLayout.choose(rows: rows, dimension: dimension, ivfThreshold: ivfThreshold, ivfThresholdBytes: ivfThresholdBytes)
    }
}
