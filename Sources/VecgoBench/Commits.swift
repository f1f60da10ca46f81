// vecgo-bench commits: how long a commit takes through each commit path, on the same server.
import ArgumentParser
import Foundation
import SegmentFormat
import Stores
import Vecgo

/// `vecgo-bench commits`.
struct CommitsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commits",
        abstract: "Commit latency and object requests per commit through each commit path, then concurrent writers.",
        discussion: "Paths: S3 conditional PUT and S3 + DynamoDB, and with --express-endpoint the same on S3 Express.")

    @Option(help: ArgumentHelp("An S3 server that also serves DynamoDB (moto, say).", valueName: "url"))
    var endpoint: String

    @Option(name: .customLong("express-endpoint"),
            help: ArgumentHelp("Also measure S3 Express through this endpoint (the proxy in Tests/s3express-proxy).", valueName: "url"))
    var expressEndpoint: String?

    @Option(help: "The DynamoDB commit table.")
    var table = "vecgo-bench-commits"

    @Option(help: "Sequential commits per path, and commits per concurrent writer.")
    var commits = 20

    @Option(help: "Rows per commit.")
    var rows = 100

    @Option(name: .customLong("dim"), help: "Vector dimension.")
    var dimension = 32

    @Option(help: "Concurrent writers, each with its own handle.")
    var writers = 4

    @Flag(help: "Print a JSON array instead of the table.")
    var json = false

    func validate() throws {
        guard !endpoint.isEmpty else { throw ValidationError("--endpoint needs a URL") }
        try requirePositive(["--commits": commits, "--rows": rows, "--dim": dimension, "--writers": writers])
    }

    func run() async throws { try await commitsBench(self) }
}

/// Counts the object-store requests a commit makes, and the bytes it writes.
final class CountingStore: BlobStore {
    let base: any BlobStore
    let requests = AtomicCounter()
    let bytesWritten = AtomicCounter()
    init(_ base: any BlobStore) { self.base = base }
    func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] { requests.increment(); return try await base.read(name, range: range) }
    func put(_ name: String, _ bytes: [UInt8]) async throws {
        requests.increment()
        bytesWritten.add(bytes.count)
        try await base.put(name, bytes)
    }
    func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        requests.increment()
        bytesWritten.add(bytes.count)
        try await base.putIfAbsent(name, bytes)
    }
    func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        requests.increment()
        return try await base.list(prefix: prefix, startAfter: startAfter)
    }
    func delete(_ name: String) async throws { requests.increment(); try await base.delete(name) }
    func size(_ name: String) async throws -> UInt64 { requests.increment(); return try await base.size(name) }
}

struct CommitRow: Codable {
    var path: String
    var commits: Int
    var p50_ms: Double
    var p99_ms: Double
    var object_requests_per_commit: Double
    var writers: Int
    var concurrent_commits_per_s: Double
    var versions_exactly_once: Bool
}

func commitsBench(_ o: CommitsBench) async throws {
    guard AWSEnvironment.current["AWS_ACCESS_KEY_ID"] != nil else { throw BenchError(description: "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (moto accepts any)") }
    var paths: [(name: String, make: (String) async throws -> (objects: CountingStore, store: any BlobStore, commits: DynamoDBCommitStore?))] = []
    func s3(_ bucket: String) async throws -> any BlobStore {
        let s = try S3Store(try .fromEnvironment(bucket: bucket, prefix: "db/", endpoint: o.endpoint))
        try await s.createBucketIfNeeded()
        return s
    }
    func express(_ bucket: String) async throws -> any BlobStore {
        _ = try await s3(bucket)  // the directory bucket is made on the server behind the proxy
        return try S3ExpressStore(try .fromEnvironment(bucket: bucket, prefix: "db/", endpoint: o.expressEndpoint!))
    }
    func withTable(_ objects: CountingStore, _ bucket: String) async throws -> DynamoDBCommitStore {
        let ddb = DynamoDBConfiguration.fromEnvironment(table: o.table, endpoint: o.endpoint)
        let c = try DynamoDBCommitStore(objects: objects, baseURI: "s3://\(bucket)/db/", configuration: ddb)
        try await c.createTableIfNeeded()
        return c
    }
    paths.append(("S3, conditional PUT", { b in let c = CountingStore(try await s3(b)); return (c, c, nil) }))
    paths.append(("S3 + DynamoDB", { b in let c = CountingStore(try await s3(b)); let d = try await withTable(c, b); return (c, d, d) }))
    if o.expressEndpoint != nil {
        paths.append(("S3 Express, conditional PUT", { b in let c = CountingStore(try await express(b)); return (c, c, nil) }))
        paths.append(("S3 Express + DynamoDB", { b in let c = CountingStore(try await express(b)); let d = try await withTable(c, b); return (c, d, d) }))
    }
    var rows: [CommitRow] = []
    let clock = ContinuousClock()
    for (name, make) in paths {
        let bucket = "vecgo-bench-\(UInt32.random(in: 0...UInt32.max))" + (name.contains("Express") ? "--use1-az4--x-s3" : "")
        let (objects, store, table) = try await make(bucket)
        // Sequential commits of one writer.
        let db = try await Vecgo.open(.remote(store), .create(dimension: o.dimension, metric: .l2))
        var samples = Samples()
        var requests = 0
        var key: UInt64 = 0
        for _ in 0..<o.commits {
            for _ in 0..<o.rows {
                key += 1
                try await db.upsert(id: key, (0..<o.dimension).map { _ in Float.random(in: 0..<1) })
            }
            let before = objects.requests.value
            let t = clock.now
            try await db.commit()
            samples.add(clock.now - t)
            requests += objects.requests.value - before
        }
        try await db.close()
        // Concurrent writers on the same database, each with its own handle.
        let start = clock.now
        let acked = try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<o.writers {
                group.addTask {
                    let h = try await Vecgo.open(.remote(store), .commitAttempts(64))
                    for c in 0..<o.commits {
                        for r in 0..<o.rows {
                            try await h.upsert(id: UInt64(1_000_000 * (w + 1) + c * o.rows + r),
                                               (0..<o.dimension).map { _ in Float.random(in: 0..<1) })
                        }
                        try await h.commit()
                    }
                    try await h.close()
                    return o.commits
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let manifests = try await objects.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
        var exactlyOnce = !manifests.isEmpty && manifests == Array(1...UInt64(manifests.count))
        if let table {
            let committed = try await table.committedVersions()
            exactlyOnce = exactlyOnce && committed == manifests
        }
        rows.append(CommitRow(path: name, commits: o.commits, p50_ms: samples.percentile(0.5) / 1000, p99_ms: samples.percentile(0.99) / 1000,
                              object_requests_per_commit: Double(requests) / Double(o.commits), writers: o.writers,
                              concurrent_commits_per_s: Double(acked) / seconds, versions_exactly_once: exactlyOnce))
    }
    if o.json {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try e.encode(rows), as: UTF8.self))
        return
    }
    print("commit latency, \(o.commits) sequential commits of \(o.rows) rows × \(o.dimension); then \(o.writers) writers × \(o.commits) commits at once")
    print("server: \(o.endpoint)\(o.expressEndpoint.map { ", S3 Express proxy \($0)" } ?? "")\n")
    print("| commit path | p50 ms | p99 ms | object requests / commit | \(o.writers) writers: commits/s | versions exactly once |")
    print("|---|---|---|---|---|---|")
    for r in rows {
        print("| \(r.path) | \(String(format: "%.2f", r.p50_ms)) | \(String(format: "%.2f", r.p99_ms)) | \(String(format: "%.1f", r.object_requests_per_commit)) | \(String(format: "%.1f", r.concurrent_commits_per_s)) | \(r.versions_exactly_once ? "yes" : "NO") |")
    }
}
