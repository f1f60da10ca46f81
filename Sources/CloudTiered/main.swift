// The cloud-tiered example: a writer builds an index directly on an object store, then a
// stateless read-only reader opens it from the store alone and searches it cold, warm, and
// after a restart from its disk cache.
//
//   swift run -c release cloud-tiered                      # embedded store, S3-like latency
//   swift run -c release cloud-tiered --endpoint http://127.0.0.1:5055 --bucket demo [--prefix p/] [--region r]
//                                     [--commit-table T]   # commits through DynamoDB
//   (a bucket named <base>--<az-id>--x-s3 is an S3 Express directory bucket; it must exist)
import ArgumentParser
import Foundation
import Stores
import Vecgo

struct DemoOptions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud-tiered",
        abstract: "The cloud-tiered example: a writer builds an index on an object store; a stateless reader searches it cold, warm and after a restart.")

    @Option(help: ArgumentHelp("An S3-compatible endpoint (without it: an embedded local store with injected latency).", valueName: "url"))
    var endpoint: String?

    @Option(help: "The bucket (needed with --endpoint; <base>--<az-id>--x-s3 is an S3 Express directory bucket, which must exist).")
    var bucket: String?

    @Option(help: "The key prefix in the bucket.")
    var prefix = "cloud-tiered/"

    @Option(help: "The AWS region.")
    var region = "us-east-1"

    @Option(name: .customLong("commit-table"),
            help: ArgumentHelp("Commit through this DynamoDB table (created if missing), at the same endpoint unless AWS_ENDPOINT_URL_DYNAMODB says otherwise.",
                               valueName: "table"))
    var commitTable: String?

    @Option(help: "Rows to write.")
    var rows = 20_000

    @Option(name: .customLong("dim"), help: "Their dimension.")
    var dimension = 128

    @Option(help: ArgumentHelp("The injected latency of the embedded store.", valueName: "s3-standard|s3-express|none"))
    var latency = "s3-standard"

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Where the embedded store and the disk cache go.", valueName: "dir"))
    var workDirectory = FileManager.default.temporaryDirectory.path + "/vecgo-cloud-tiered-\(getpid())"

    /// The latency profile --latency names.
    var latencyProfile: LatencyInjectingStore.Profile { LatencyInjectingStore.Profile(named: latency)! }

    func validate() throws {
        guard rows > 0 else { throw ValidationError("--rows must be a positive integer, got \(rows)") }
        guard dimension > 0 else { throw ValidationError("--dim must be a positive integer, got \(dimension)") }
        guard LatencyInjectingStore.Profile(named: latency) != nil else {
            throw ValidationError("--latency must be s3-standard, s3-express or none, got '\(latency)'")
        }
        if endpoint != nil && bucket == nil { throw ValidationError("--endpoint needs --bucket") }
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func millis(_ d: Duration) -> String {
    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    return String(format: "%.2f ms", ms)
}

func counters(_ c: TierCounters) -> String {
    "RAM \(c.ramHits) hit / \(c.ramMisses) miss, disk \(c.diskHits) hit / \(c.diskMisses) miss, remote \(c.remoteRequests) requests (\(c.remoteBytes) bytes)"
}

/// Clustered Gaussian data from a fixed seed.
func makeData(rows: Int, dimension: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix(seed)
    let centers = (0..<16).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
    return (0..<rows).map { i in centers[i % centers.count].map { $0 + Float.random(in: -0.1...0.1, using: &rng) } }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func run(_ opts: DemoOptions) async throws {
    let clock = ContinuousClock()
    let store: any BlobStore
    var describe: String
    if let endpoint = opts.endpoint, let bucket = opts.bucket {
        var config = try S3Configuration.fromEnvironment(bucket: bucket, prefix: opts.prefix, endpoint: endpoint,
                                                         region: opts.region)
        config.addressing = .pathStyle
        let objects: any BlobStore
        if bucket.hasSuffix("--x-s3") {
            objects = try S3ExpressStore(config)
            describe = "S3 Express endpoint \(endpoint), directory bucket \(bucket), prefix \(opts.prefix)"
        } else {
            let s3 = try S3Store(config)
            try await s3.createBucketIfNeeded()
            objects = s3
            describe = "S3-compatible endpoint \(endpoint), bucket \(bucket), prefix \(opts.prefix)"
        }
        if let table = opts.commitTable {
            let ddb = DynamoDBConfiguration.fromEnvironment(table: table, endpoint: AWSEnvironment.current.endpoint(service: "dynamodb") ?? endpoint,
                                                            region: opts.region)
            let commits = try DynamoDBCommitStore(objects: objects, baseURI: "s3://\(bucket)/\(opts.prefix)", configuration: ddb)
            try await commits.createTableIfNeeded()
            store = commits
            describe += ", commits through DynamoDB table \(table)"
        } else {
            store = objects
        }
    } else {
        let local = try LocalDirectoryStore(root: opts.workDirectory + "/store")
        store = LatencyInjectingStore(local, profile: opts.latencyProfile)
        describe = "embedded store \(local.root) with injected \(opts.latency) latency"
    }
    let cacheDir = opts.workDirectory + "/cache"
    try? FileManager.default.removeItem(atPath: cacheDir)
    print("Vecgo cloud-tiered demo")
    print("  store: \(describe)")

    // 1. Build the index directly on the store.
    let data = makeData(rows: opts.rows, dimension: opts.dimension, seed: 42)
    let start = clock.now
    let writer = try await Vecgo.open(.remote(store), .create(dimension: opts.dimension, metric: .l2))
    let half = data.count / 2
    for (i, v) in data.enumerated() {
        try await writer.insert(v, metadata: ["cluster": .int(Int64(i % 16))])
        if i + 1 == half { try await writer.commit() }
    }
    try await writer.close()
    let objects = try await store.list(prefix: "")
    print("\n1. writer built \(data.count) × \(opts.dimension) vectors directly on the store in \(millis(clock.now - start)); objects:")
    for o in objects { print("     \(o.name)  (\(o.size) bytes)") }

    // 2. A stateless read-only reader: bucket + prefix only.
    var t = clock.now
    let reader = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cacheDir), .blockCacheSize(256 << 20))
    print("\n2. read-only reader opened in \(millis(clock.now - t)) (dimension \(reader.dimension), metric \(reader.metric) from the manifest, version \(await reader.version))")

    // 3. Writes are refused.
    do {
        try await reader.insert(data[0])
        print("3. ERROR: the reader accepted a write")
        exit(1)
    } catch let e as VecgoError where e.code == .readOnly {
        print("3. insert on the reader rejected: \(e)")
    }

    // 4. Cold, then warm.
    let query = data[123].map { $0 + 0.01 }
    var before = await reader.tierCounters()
    t = clock.now
    let cold = try await reader.search(query, k: 10)
    print("\n4. cold query: \(millis(clock.now - t)), top hit id \(cold[0].id) at distance \(cold[0].distance)")
    print("     \(counters(await reader.tierCounters().since(before)))")
    before = await reader.tierCounters()
    t = clock.now
    let warm = try await reader.search(query, k: 10)
    print("5. warm query: \(millis(clock.now - t)), same results: \(warm == cold)")
    print("     \(counters(await reader.tierCounters().since(before)))")
    try await reader.close()

    // 6. Restart the reader with the same cache directory: served from disk.
    let reopened = try await Vecgo.open(.remote(store), .readOnly, .cacheDirectory(cacheDir))
    before = await reopened.tierCounters()
    t = clock.now
    let fromDisk = try await reopened.search(query, k: 10)
    print("6. after a reader restart: query in \(millis(clock.now - t)), same results: \(fromDisk == cold)")
    print("     \(counters(await reopened.tierCounters().since(before)))")
    try await reopened.close()
    if opts.endpoint == nil { try? FileManager.default.removeItem(atPath: opts.workDirectory) }
}

let options = DemoOptions.parseOrExit()  // usage errors: the parser's message, exit status 64
do {
    try await run(options)
} catch {
    FileHandle.standardError.write("cloud-tiered: \(error)\n".data(using: .utf8)!)
    exit(1)
}
