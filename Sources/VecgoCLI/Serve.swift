// `vecgo serve`: a database served as JSON over HTTP (VecgoServer: Hummingbird 2 under
// swift-service-lifecycle; the API is docs/openapi.json). Readers refresh on an interval;
// SIGTERM drains in-flight requests and commits a writer's pending writes before exit.
public import ArgumentParser
import IndexCore
public import Logging
import Stores
import Vecgo
import VecgoServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a database as JSON over HTTP (docs/openapi.json): search, and with --writer upsert, delete and commit.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Accept upserts, deletes and commits (read-only otherwise: writes are answered 403).")
    var writer = false
    @Option(help: "Create the database with this dimension when none exists (needs --writer).")
    var createDimension: Int?
    @Option(help: "The metric of a created database: l2, cosine or dot.")
    var metric: String = "l2"
    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "The port to listen on.")
    var port = 8080
    @Option(help: "Seconds between a reader's refreshes.")
    var refreshInterval = 5.0
    @Option(help: "A persistent disk cache directory.")
    var cacheDirectory: String?
    @Option(help: "The largest request body, in bytes (larger ones are answered 413).")
    var maxBodyBytes = 8 << 20
    @Option(help: "The largest k of a search.")
    var maxK = 1000
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        if createDimension != nil && !writer { throw ValidationError("--create-dimension needs --writer") }
        if let d = createDimension, d < 1 { throw ValidationError("--create-dimension must be positive, got \(d)") }
        if Metric.allCases.first(where: { "\($0)" == metric }) == nil { throw ValidationError("--metric must be l2, cosine or dot, got '\(metric)'") }
        if !(1...65_535).contains(port) { throw ValidationError("--port must be 1...65535, got \(port)") }
        if !(refreshInterval > 0) { throw ValidationError("--refresh-interval must be a positive number of seconds") }
        if maxK < 1 { throw ValidationError("--max-k must be positive, got \(maxK)") }
    }

    func run() async throws {
        var logger = Logger(label: "vecgo.serve")
        logger.logLevel = logLevel
        let m = Metric.allCases.first { "\($0)" == metric }!
        let config = VecgoServer.Configuration(
            store: try store.open(), readOnly: !writer, create: createDimension.map { ($0, m) }, host: host, port: port,
            refreshInterval: refreshInterval, cacheDirectory: cacheDirectory,
            limits: .init(maxBodyBytes: maxBodyBytes, maxK: maxK), logger: logger)
        try await VecgoServer(config).run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
