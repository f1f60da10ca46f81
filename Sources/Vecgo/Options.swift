public import IndexCore
public import Stores

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
    /// Commits of at least this many rows write IVF segments (partitions stored contiguously, for
    /// cold reads); smaller ones write flat or graph segments. Default 50 000.
    case ivfThreshold(Int)
}

/// The validated configuration an open handle runs with.
struct Configuration: Sendable {
    var create: (dimension: Int, metric: Metric)?
    var readOnly = false
    var cacheDirectory: String?
    var blockCacheSize = 256 << 20
    var diskCacheSize = 10 << 30
    var ivfThreshold = 50_000

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
            case .ivfThreshold(let n):
                guard n >= 1 else { throw VecgoError(.invalidArgument, "ivfThreshold \(n) must be positive") }
                ivfThreshold = n
            }
        }
        if readOnly && create != nil {
            throw VecgoError(.invalidArgument, ".create and .readOnly cannot be combined: a read-only handle cannot create a database")
        }
    }
}
