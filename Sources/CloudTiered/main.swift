// The cloud-tiered example: a writer builds an index directly on an object store, then a
// stateless read-only reader opens it from the store alone and searches it cold, warm, and
// after a restart from its disk cache.
//
//   swift run -c release cloud-tiered                      # embedded store, S3-like latency
//   swift run -c release cloud-tiered --endpoint http://127.0.0.1:5055 --bucket demo [--prefix p/] [--region r]
//                                     [--commit-table T]   # commits through DynamoDB
//   (a bucket named <base>--<az-id>--x-s3 is an S3 Express directory bucket; it must exist)
import Foundation
import Stores
import Vecgo

struct DemoOptions {
    var endpoint: String?
    var bucket: String?
    var prefix = "cloud-tiered/"
    var region = "us-east-1"
    var commitTable: String?
    var rows = 20_000
    var dimension = 128
    var latency = LatencyInjectingStore.Profile.s3Standard
    var latencyName = "s3-standard"
    var workDirectory = FileManager.default.temporaryDirectory.path + "/vecgo-cloud-tiered-\(getpid())"

    static let usage = """
        usage: cloud-tiered [--endpoint URL --bucket NAME [--prefix P] [--region R] [--commit-table T]]
                            [--rows N] [--dim D] [--latency s3-standard|s3-express|none] [--work-dir DIR]
        Without --endpoint the store is an embedded local directory with injected S3-like latency.
        With --endpoint, credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
        A bucket named <base>--<az-id>--x-s3 is used as an S3 Express directory bucket (it must exist).
        --commit-table commits versions through that DynamoDB table, at the same endpoint unless
        AWS_ENDPOINT_URL_DYNAMODB says otherwise (created if missing).
        """

    init(_ args: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw DemoError("\(args[i - 1]) needs a value\n\(Self.usage)") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--endpoint": endpoint = try value()
            case "--bucket": bucket = try value()
            case "--prefix": prefix = try value()
            case "--region": region = try value()
            case "--commit-table": commitTable = try value()
            case "--rows": rows = Int(try value()) ?? -1
            case "--dim": dimension = Int(try value()) ?? -1
            case "--work-dir": workDirectory = try value()
            case "--latency":
                latencyName = try value()
                guard let p = LatencyInjectingStore.Profile(named: latencyName) else {
                    throw DemoError("unknown latency profile '\(latencyName)'\n\(Self.usage)")
                }
                latency = p
            case "-h", "--help": print(Self.usage); exit(0)
            default: throw DemoError("unknown argument '\(args[i])'\n\(Self.usage)")
            }
            i += 1
        }
        guard rows > 0, dimension > 0 else { throw DemoError("--rows and --dim must be positive integers") }
        if endpoint != nil && bucket == nil { throw DemoError("--endpoint needs --bucket\n\(Self.usage)") }
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

func run() async throws {
    let opts = try DemoOptions(Array(CommandLine.arguments.dropFirst()))
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
        store = LatencyInjectingStore(local, profile: opts.latency)
        describe = "embedded store \(local.root) with injected \(opts.latencyName) latency"
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

do {
    try await run()
} catch {
    FileHandle.standardError.write("cloud-tiered: \(error)\n".data(using: .utf8)!)
    exit(1)
}
