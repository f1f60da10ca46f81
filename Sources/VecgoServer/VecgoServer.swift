// `vecgo serve`: the configuration, the HTTP application (Hummingbird 2) and `run()`, which
// serves until SIGTERM/SIGINT, then drains requests and commits pending writes.
import Foundation
public import Hummingbird
public import Logging
import Metrics
import Prometheus
import ServiceLifecycle
public import Stores
import Synchronization
import UnixSignals
public import Vecgo

/// A JSON-over-HTTP server for one database (see docs/openapi.json for the API).
///
/// ```swift
/// let server = VecgoServer(.init(store: try openStore(url: "s3://bucket/vectors/"), port: 8080))
/// try await server.run()   // until SIGTERM or SIGINT
/// ```
public struct VecgoServer: Sendable {
    /// How a server runs.
    public struct Configuration: Sendable {
        /// The store the database lives in.
        public var store: any BlobStore
        /// Read-only (the default): writes answer 403. A writer accepts upserts, deletes and
        /// commits, and commits pending writes when it shuts down.
        public var readOnly: Bool
        /// Create the database when none exists (writer mode only).
        public var create: (dimension: Int, metric: Metric)?
        /// The address to listen on.
        public var host: String
        /// The port to listen on (0 picks a free one).
        public var port: Int
        /// A reader moves to the newest version at this interval, in seconds.
        public var refreshInterval: Double
        /// A persistent disk cache directory, if any.
        public var cacheDirectory: String?
        /// The RAM block cache budget in bytes (the library's default when nil).
        public var blockCacheSize: Int?
        /// Request limits.
        public var limits: Limits
        /// Where the server and the library log (the library's lines carry its label).
        public var logger: Logger

        /// Limits on what one request may ask.
        public struct Limits: Sendable {
            /// The largest request body, in bytes (413 beyond it).
            public var maxBodyBytes: Int
            /// The largest `k` of a search.
            public var maxK: Int
            /// The most rows (or keys) in one upsert or delete.
            public var maxBatchRows: Int
            /// Defaults: 8 MiB bodies, k ≤ 1000, 10 000 rows per write.
            public init(maxBodyBytes: Int = 8 << 20, maxK: Int = 1000, maxBatchRows: Int = 10_000) {
                self.maxBodyBytes = maxBodyBytes
                self.maxK = maxK
                self.maxBatchRows = maxBatchRows
            }
        }

        /// A configuration; only the store is required.
        public init(store: any BlobStore, readOnly: Bool = true, create: (dimension: Int, metric: Metric)? = nil,
                    host: String = "127.0.0.1", port: Int = 8080, refreshInterval: Double = 5,
                    cacheDirectory: String? = nil, blockCacheSize: Int? = nil, limits: Limits = Limits(),
                    logger: Logger = Logger(label: "vecgo.serve")) {
            self.store = store
            self.readOnly = readOnly
            self.create = create
            self.host = host
            self.port = port
            self.refreshInterval = refreshInterval
            self.cacheDirectory = cacheDirectory
            self.blockCacheSize = blockCacheSize
            self.limits = limits
            self.logger = logger
        }

        /// Checks the values a user gave.
        func validate() throws(VecgoError) {
            guard (0...65_535).contains(port) else { throw VecgoError(.invalidArgument, "port \(port) is outside 0...65535") }
            guard refreshInterval > 0, refreshInterval.isFinite else {
                throw VecgoError(.invalidArgument, "the refresh interval must be a positive number of seconds, got \(refreshInterval)")
            }
            guard limits.maxBodyBytes >= 1024, limits.maxK >= 1, limits.maxK <= 10_000, limits.maxBatchRows >= 1 else {
                throw VecgoError(.invalidArgument, "limits must allow bodies of at least 1 KiB, k in 1...10000 and at least one row per write")
            }
            guard !(readOnly && create != nil) else {
                throw VecgoError(.invalidArgument, "a read-only server cannot create a database; serve as a writer to create one")
            }
        }

        /// The library options this configuration opens the database with.
        func openOptions(logger: Logger) -> [OpenOption] {
            var o: [OpenOption] = [.logger(logger)]
            if readOnly { o += [.readOnly, .refreshInterval(refreshInterval)] }
            if let create { o.append(.create(dimension: create.dimension, metric: create.metric)) }
            if let cacheDirectory { o.append(.cacheDirectory(cacheDirectory)) }
            if let blockCacheSize { o.append(.blockCacheSize(blockCacheSize)) }
            return o
        }
    }

    /// The configuration this server runs with.
    public let configuration: Configuration

    /// A server (nothing starts until ``run()``).
    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT: the database opens in the background (`/readyz` answers
    /// 200 once it is), then on the signal the server stops accepting connections, finishes
    /// the requests in flight, and (writer mode) commits pending writes before returning.
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` for a bad configuration; what opening the
    ///   database throws when it cannot be retried; what the final commit throws.
    public func run() async throws {
        try await makeApplication().runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    /// The Hummingbird application: the routes and the database service. ``run()`` runs it
    /// under a service group with graceful shutdown; tests run it with HummingbirdTesting.
    public func makeApplication() throws(VecgoError) -> some ApplicationProtocol {
        try configuration.validate()
        let registry = PrometheusBootstrap.registry
        let holder = DatabaseHolder()
        let logger = configuration.logger
        let router = Router()
        router.add(middleware: JSONErrorMiddleware(logger: logger))
        router.add(middleware: MetricsMiddleware())
        Routes(configuration: configuration, holder: holder, registry: registry).register(on: router)
        return Application(router: router,
                           configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                serverName: "vecgo"),
                           services: [DatabaseService(configuration: configuration, holder: holder, logger: logger)],
                           logger: logger)
    }
}

/// The process's swift-metrics backend: swift-prometheus, bootstrapped once, by the first
/// server made (a process can bootstrap swift-metrics only once).
enum PrometheusBootstrap {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Query latencies from tens of microseconds (warm RAM) to seconds (cold Standard S3).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        ]
        // Names from other packages (Hummingbird's `http.server.request.duration`) made valid
        // Prometheus names: anything but letters, digits, `_` and `:` becomes `_`.
        factory.nameAndLabelSanitizer = { name, labels in
            (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    static func sanitize(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") ? $0 : "_" })
    }
}
