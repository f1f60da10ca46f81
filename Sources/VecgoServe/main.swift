// `vecgo-serve`: a thin command-line wrapper around VecgoServer.run() (temporary; `vecgo serve`
// takes the same options once wired into the vecgo tool).
public import ArgumentParser
import IndexCore
public import Logging
import Stores
import Vecgo
import VecgoServer

@main
struct VecgoServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vecgo-serve",
        abstract: "Serve a Vecgo database as JSON over HTTP (docs/openapi.json).")

    @Argument(help: "The store: a directory path or s3://bucket/prefix.")
    var storeURL: String
    @Option(help: "S3 endpoint override (MinIO, moto).")
    var endpoint: String?
    @Option(help: "The S3 region.")
    var region: String?
    @Option(help: "Commit through this DynamoDB table.")
    var commitTable: String?
    @Flag(help: "Accept upserts, deletes and commits (read-only otherwise).")
    var writer = false
    @Option(help: "Create the database with this dimension when none exists (writer only).")
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
    @Option(help: "The largest request body, in bytes.")
    var maxBodyBytes = 8 << 20
    @Option(help: "The largest k of a search.")
    var maxK = 1000
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        if createDimension != nil && !writer { throw ValidationError("--create-dimension needs --writer") }
        if Metric.allCases.first(where: { "\($0)" == metric }) == nil { throw ValidationError("--metric must be l2, cosine or dot, got '\(metric)'") }
    }

    func run() async throws {
        var logger = Logger(label: "vecgo.serve")
        logger.logLevel = logLevel
        let store = try openStore(url: storeURL, endpoint: endpoint, region: region, commitTable: commitTable)
        let m = Metric.allCases.first { "\($0)" == metric }!
        let config = VecgoServer.Configuration(
            store: store, readOnly: !writer, create: createDimension.map { ($0, m) }, host: host, port: port,
            refreshInterval: refreshInterval, cacheDirectory: cacheDirectory,
            limits: .init(maxBodyBytes: maxBodyBytes, maxK: maxK), logger: logger)
        try await VecgoServer(config).run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
