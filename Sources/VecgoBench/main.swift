// vecgo-bench: cold versus warm latency per tier.
//
//   vecgo-bench tiers [--latency s3-standard|s3-express|none] [--rows N] [--dim D] [--queries Q] [--json]
//
// Builds a database on the embedded store with an injected latency profile, then measures
// 4 KiB block reads and whole queries from each tier: remote (cold), disk (after a restart
// with the same cache directory), RAM (warm), and the same queries on the in-memory writer.
import Foundation
import Stores
import Tiering
import Vecgo

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

struct Options {
    var latencyName = "s3-standard"
    var rows = 20_000
    var dimension = 128
    var queries = 20
    var json = false

    init(_ args: ArraySlice<String>) throws {
        var it = args.makeIterator()
        while let a = it.next() {
            func value() throws -> String {
                guard let v = it.next() else { throw BenchError(description: "\(a) needs a value") }
                return v
            }
            switch a {
            case "--latency": latencyName = try value()
            case "--rows": rows = Int(try value()) ?? 0
            case "--dim": dimension = Int(try value()) ?? 0
            case "--queries": queries = Int(try value()) ?? 0
            case "--json": json = true
            default: throw BenchError(description: "unknown argument \(a)")
            }
        }
        guard LatencyInjectingStore.Profile(named: latencyName) != nil else {
            throw BenchError(description: "unknown latency profile \(latencyName)")
        }
        guard rows > 0, dimension > 0, queries > 0 else { throw BenchError(description: "--rows, --dim, --queries must be positive") }
    }
}

/// Latency samples in microseconds.
struct Samples {
    var values: [Double] = []
    mutating func add(_ d: Duration) {
        values.append(Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12)
    }
    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
    }
}

struct Row: Codable {
    var tier: String
    var what: String
    var samples: Int
    var p50_us: Double
    var p99_us: Double
    var remote_requests: Int
}

func measure(_ n: Int, _ body: () async throws -> Void) async rethrows -> Samples {
    var s = Samples()
    let clock = ContinuousClock()
    for _ in 0..<n {
        let t = clock.now
        try await body()
        s.add(clock.now - t)
    }
    return s
}

func tiers(_ o: Options) async throws {
    let profile = LatencyInjectingStore.Profile(named: o.latencyName)!
    let work = FileManager.default.temporaryDirectory.path + "/vecgo-bench-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: work) }
    let local = try LocalDirectoryStore(root: work + "/store")
    let remote = LatencyInjectingStore(local, profile: profile)
    var rng = SystemRandomNumberGenerator()
    let data = (0..<o.rows).map { _ in (0..<o.dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
    let queries = (0..<o.queries).map { _ in (0..<o.dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

    // In-memory baseline: the writer's memtable before commit.
    let writer = try await Vecgo.open(.remote(remote), .create(dimension: o.dimension, metric: .l2))
    for v in data { try await writer.insert(v) }
    var qi = 0
    let memory = try await measure(o.queries) { _ = try await writer.search(queries[qi % queries.count], k: 10); qi += 1 }
    try await writer.close()

    var rows: [Row] = []
    let cacheDir = work + "/cache"

    // Whole queries: cold (fresh reader, empty caches), warm (RAM), after restart (disk).
    var cold = Samples(), warm = Samples(), disk = Samples()
    var coldRequests = 0, warmRequests = 0, diskRequests = 0
    let clock = ContinuousClock()
    for q in queries {
        try? FileManager.default.removeItem(atPath: cacheDir)
        let reader = try await Vecgo.open(.remote(remote), .readOnly, .cacheDirectory(cacheDir))
        var before = remote.requestCount
        var t = clock.now
        _ = try await reader.search(q, k: 10)
        cold.add(clock.now - t)
        coldRequests += remote.requestCount - before
        before = remote.requestCount
        t = clock.now
        _ = try await reader.search(q, k: 10)
        warm.add(clock.now - t)
        warmRequests += remote.requestCount - before
        try await reader.close()
        let restarted = try await Vecgo.open(.remote(remote), .readOnly, .cacheDirectory(cacheDir))
        before = remote.requestCount
        t = clock.now
        _ = try await restarted.search(q, k: 10)
        disk.add(clock.now - t)
        diskRequests += remote.requestCount - before
        try await restarted.close()
    }
    rows.append(Row(tier: "remote (cold)", what: "query", samples: cold.values.count, p50_us: cold.percentile(0.5),
                    p99_us: cold.percentile(0.99), remote_requests: coldRequests))
    rows.append(Row(tier: "disk (restart)", what: "query", samples: disk.values.count, p50_us: disk.percentile(0.5),
                    p99_us: disk.percentile(0.99), remote_requests: diskRequests))
    rows.append(Row(tier: "ram (warm)", what: "query", samples: warm.values.count, p50_us: warm.percentile(0.5),
                    p99_us: warm.percentile(0.99), remote_requests: warmRequests))
    rows.append(Row(tier: "in-memory", what: "query", samples: memory.values.count, p50_us: memory.percentile(0.5),
                    p99_us: memory.percentile(0.99), remote_requests: 0))

    // 4 KiB block reads through the cache stack.
    let segment = try require(try await local.list(prefix: "segment_").first, "no segment written")
    let stats = TierStats()
    let blockDir = work + "/blocks"
    let ram = BlockCache(capacityBytes: 64 << 20, stats: stats)
    let store = CachingStore(remote: remote, ram: ram,
                             disk: try DiskCache(directory: blockDir, capacityBytes: 1 << 30, stats: stats))
    let blocks = Int(min(segment.size / 4096, 64))
    var b = 0
    let blockRemote = try await measure(1) {
        _ = try await store.read(segment.name, range: 0..<4096)
    }
    let blockRAM = try await measure(blocks * 10) {
        _ = try await store.read(segment.name, range: UInt64(b % blocks) * 4096..<UInt64(b % blocks + 1) * 4096); b += 1
    }
    await store.disk?.flush()
    let diskOnly = try DiskCache(directory: blockDir, capacityBytes: 1 << 30, stats: TierStats())
    let blockDisk = await measure(blocks) {
        _ = diskOnly.get(BlockKey(object: segment.name, index: 0))
    }
    rows.append(Row(tier: "remote (cold)", what: "4 MiB unit for a 4 KiB block", samples: 1, p50_us: blockRemote.percentile(0.5),
                    p99_us: blockRemote.percentile(0.99), remote_requests: 1))
    rows.append(Row(tier: "disk", what: "4 MiB block file read + CRC", samples: blockDisk.values.count,
                    p50_us: blockDisk.percentile(0.5), p99_us: blockDisk.percentile(0.99), remote_requests: 0))
    rows.append(Row(tier: "ram", what: "4 KiB block", samples: blockRAM.values.count, p50_us: blockRAM.percentile(0.5),
                    p99_us: blockRAM.percentile(0.99), remote_requests: 0))

    if o.json {
        struct Report: Codable {
            var latency_profile: String
            var rows: Int
            var dimension: Int
            var results: [Row]
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(Report(latency_profile: o.latencyName, rows: o.rows, dimension: o.dimension,
                                                     results: rows)), as: UTF8.self))
    } else {
        print("vecgo-bench tiers: \(o.rows) × \(o.dimension), latency profile \(o.latencyName), \(o.queries) queries, exact search")
        print("tier".padding(toLength: 16, withPad: " ", startingAt: 0) + "what".padding(toLength: 32, withPad: " ", startingAt: 0)
              + "p50 µs".padding(toLength: 12, withPad: " ", startingAt: 0) + "p99 µs".padding(toLength: 12, withPad: " ", startingAt: 0) + "remote requests")
        for r in rows {
            print(r.tier.padding(toLength: 16, withPad: " ", startingAt: 0) + r.what.padding(toLength: 32, withPad: " ", startingAt: 0)
                  + String(format: "%-12.1f%-12.1f%d", r.p50_us, r.p99_us, r.remote_requests))
        }
    }
}

func require<T>(_ v: T?, _ message: String) throws -> T {
    guard let v else { throw BenchError(description: message) }
    return v
}

let args = CommandLine.arguments
do {
    switch args.dropFirst().first {
    case "tiers": try await tiers(Options(args.dropFirst(2)))
    case "ann": try ANNBench(args.dropFirst(2)).run()
    default:
        print("""
            usage: vecgo-bench tiers [--latency s3-standard|s3-express|none] [--rows N] [--dim D] [--queries Q] [--json]
                   vecgo-bench ann --base B.fvecs --queries Q.fvecs [--groundtruth G.ivecs] --index hnsw|ivf|flat
                                   [--k 10] [--threads N] [--m 16] [--ef-construction 200] [--nlist N] [--metric l2]
                                   [--sq8-rerank R] [--json]
            """)
        exit(args.count > 1 ? 2 : 0)
    }
} catch {
    FileHandle.standardError.write("vecgo-bench: \(error)\n".data(using: .utf8)!)
    exit(1)
}
