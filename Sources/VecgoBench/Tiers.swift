// vecgo-bench tiers: cold versus warm latency per tier.
//
// Builds a database on the embedded store with an injected latency profile (or on an S3
// endpoint), then measures 4 KiB block reads and whole queries from each tier: remote (cold),
// disk (after a restart with the same cache directory), RAM (warm), and the same queries on
// the in-memory writer. Also holds the sample and measuring helpers the other benchmarks use.
import ArgumentParser
import Foundation
import Stores
import Tiering
import Vecgo

/// `vecgo-bench tiers`.
struct TiersBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiers",
        abstract: "Cold versus warm latency per tier: remote, disk after a restart, RAM, and the in-memory writer.")

    @Option(name: .customLong("latency"),
            help: ArgumentHelp("The embedded store's injected latency: s3-standard, s3-express or none.", valueName: "profile"))
    var latencyName = "s3-standard"

    @Option(help: "Rows in the database.")
    var rows = 20_000

    @Option(name: .customLong("dim"), help: "Vector dimension.")
    var dimension = 128

    @Option(help: "Queries measured per tier.")
    var queries = 20

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    @Option(help: ArgumentHelp("Measure against this S3 endpoint instead of the embedded store.", valueName: "url"))
    var endpoint: String?

    @Option(help: "The bucket on --endpoint (default: a new one per run).")
    var bucket: String?

    @Option(help: ArgumentHelp("Also write a chart of the p50 latencies as SVG to this file.", valueName: "file"))
    var svg: String?

    func validate() throws {
        try requireLatencyProfile(latencyName)
        try requirePositive(["--rows": rows, "--dim": dimension, "--queries": queries])
        if bucket != nil && endpoint == nil { throw ValidationError("--bucket needs --endpoint") }
    }

    func run() async throws { try await tiers(self) }
}

/// Latency samples in microseconds.
struct Samples {
    var values: [Double] = []
    mutating func add(_ micros: Double) { values.append(micros) }
    mutating func add(_ d: Duration) { add(Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12) }
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
    var remote_bytes: Int
}

/// A tier's latency as its ``LatencyHistogram`` recorded it.
struct Histogram: Codable {
    var tier: String
    var samples: Int
    var p50_us: Double
    var p99_us: Double
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

func tiers(_ o: TiersBench) async throws {
    let work = FileManager.default.temporaryDirectory.path + "/vecgo-bench-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: work) }
    let remote: any BlobStore
    let target: String
    if let endpoint = o.endpoint {
        let bucket = o.bucket ?? "vecgo-bench-\(getpid())"
        let s3 = try S3Store(try S3Configuration.fromEnvironment(bucket: bucket, prefix: "tiers-\(getpid())/", endpoint: endpoint))
        try await s3.createBucketIfNeeded()
        remote = s3
        target = "endpoint \(endpoint), bucket \(bucket)"
    } else {
        remote = LatencyInjectingStore(try LocalDirectoryStore(root: work + "/store"),
                                       profile: LatencyInjectingStore.Profile(named: o.latencyName)!)
        target = "embedded store, latency profile \(o.latencyName)"
    }
    var rng = SystemRandomNumberGenerator()
    let data = (0..<o.rows).map { _ in (0..<o.dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
    let queries = (0..<o.queries).map { _ in (0..<o.dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

    // One graph segment, whatever its size: the tiers are compared on the same index the
    // in-memory baseline searches (`vecgo-bench scale` measures partitioned segments cold).
    let writer = try await Vecgo.open(.remote(remote), .create(dimension: o.dimension, metric: .l2), .ivfThresholdBytes(Int.max))
    for v in data { try await writer.insert(v) }
    try await writer.close()
    // The in-memory baseline: the same rows in an uncommitted memtable (the same HNSW graph
    // parameters as the committed graph segment), never written anywhere.
    let inMemory = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: o.dimension, metric: .l2))
    for v in data { try await inMemory.insert(v) }

    // Whole queries: cold (a fresh reader with empty caches per query), after a restart with
    // the same cache directory (disk), and warm (one reader that has seen every query once).
    var cold = Samples(), warm = Samples(), disk = Samples()
    var coldC = TierCounters(), warmC = TierCounters(), diskC = TierCounters()
    func add(_ a: inout TierCounters, _ b: TierCounters) {
        a.remoteRequests += b.remoteRequests; a.remoteBytes += b.remoteBytes
        a.ramHits += b.ramHits; a.diskHits += b.diskHits
    }
    let cacheDir = work + "/cache"
    var coldReaderRequests = 0
    for q in queries {
        try? FileManager.default.removeItem(atPath: cacheDir)
        let reader = try await Vecgo.open(.remote(remote), .readOnly, .cacheDirectory(cacheDir))
        let (_, c) = try await reader.searchWithStats(q, k: 10)
        cold.add(c.latencyMicros); add(&coldC, c.tiers)
        coldReaderRequests += await reader.tierCounters().remoteRequests  // open (and its prefetches) + query
        try await reader.close()
        let restarted = try await Vecgo.open(.remote(remote), .readOnly, .cacheDirectory(cacheDir))
        let (_, d) = try await restarted.searchWithStats(q, k: 10)
        disk.add(d.latencyMicros); add(&diskC, d.tiers)
        try await restarted.close()
    }
    // Warm against in-memory: interleaved, after a warm-up pass of each, so drift in the
    // machine's state hits both alike.
    let warmReader = try await Vecgo.open(.remote(remote), .readOnly)
    try await warmReader.warm()
    for q in queries {
        _ = try await warmReader.search(q, k: 10)
        _ = try await inMemory.search(q, k: 10)
    }
    var memory = Samples()
    for _ in 0..<5 {
        for q in queries {
            let (_, w) = try await warmReader.searchWithStats(q, k: 10)
            warm.add(w.latencyMicros); add(&warmC, w.tiers)
            memory.add(try await inMemory.searchWithStats(q, k: 10).1.latencyMicros)
        }
    }
    try await warmReader.close()
    var rows: [Row] = []
    func row(_ tier: String, _ what: String, _ s: Samples, _ c: TierCounters) {
        rows.append(Row(tier: tier, what: what, samples: s.values.count, p50_us: s.percentile(0.5), p99_us: s.percentile(0.99),
                        remote_requests: c.remoteRequests, remote_bytes: c.remoteBytes))
    }
    row("remote (cold)", "query", cold, coldC)
    row("disk (restart)", "query", disk, diskC)
    row("ram (warm)", "query", warm, warmC)
    row("in-memory", "query", memory, TierCounters())

    // 4 KiB block reads through the cache stack.
    let segment = try require(try await remote.list(prefix: "segment_").first, "no segment written")
    let stats = TierStats()
    let blockDir = work + "/blocks"
    let store = CachingStore(remote: remote, ram: BlockCache(capacityBytes: 64 << 20, stats: stats),
                             disk: try DiskCache(directory: blockDir, capacityBytes: 1 << 30, stats: stats))
    let blocks = Int(max(1, min(segment.size / 4096, 64)))
    var b = 0
    let before = stats.snapshot()
    let blockRemote = try await measure(1) { _ = try await store.read(segment.name, range: 0..<4096) }
    let fetched = stats.snapshot().since(before)
    _ = try await store.read(segment.name, range: 0..<UInt64(blocks * 4096))  // the other pages, so RAM reads are all hits
    let blockRAM = try await measure(blocks * 10) {
        _ = try await store.read(segment.name, range: UInt64(b % blocks) * 4096..<UInt64(b % blocks + 1) * 4096); b += 1
    }
    await store.disk?.flush()
    let diskOnly = try DiskCache(directory: blockDir, capacityBytes: 1 << 30, stats: TierStats())
    var d = 0
    let blockDisk = await measure(blocks * 10) {
        let lo = (d % blocks) * 4096
        _ = diskOnly.get(BlockKey(object: segment.name, index: 0), range: lo..<lo + 4096); d += 1
    }
    row("remote (cold)", "a 4 KiB page", blockRemote, fetched)
    row("disk", "4 KiB of a 4 MiB block file", blockDisk, TierCounters())
    row("ram", "a 4 KiB page", blockRAM, TierCounters())
    // The same tiers as the cache's own latency histograms saw them.
    let seen = stats.snapshot().since(before)
    let histograms = [("ram", seen.ramLatency), ("disk", diskOnly.stats.snapshot().diskLatency), ("remote", seen.remoteLatency)]
        .map { Histogram(tier: $0.0, samples: $0.1.count, p50_us: $0.1.percentileMicros(0.5) ?? 0,
                         p99_us: $0.1.percentileMicros(0.99) ?? 0) }

    // Counts must agree with the tier design; timings are reported, never asserted.
    var problems: [String] = []
    // (A cold query may find everything already brought by the tail prefetch of open, so the
    // remote requests are counted over open + query.)
    if coldReaderRequests < 3 * o.queries {
        problems.append("cold readers made \(coldReaderRequests) remote requests for \(o.queries) opens + queries (at least a listing, a manifest and a tail each)")
    }
    if warmC.remoteRequests != 0 { problems.append("warm queries made \(warmC.remoteRequests) remote requests") }
    if diskC.remoteRequests != 0 { problems.append("queries after a restart made \(diskC.remoteRequests) remote requests") }
    if fetched.remoteRequests != 1 { problems.append("a cold block read made \(fetched.remoteRequests) requests") }

    if o.json {
        struct Report: Codable {
            var target: String
            var rows: Int
            var dimension: Int
            var counts_consistent: Bool
            var results: [Row]
            var histograms: [Histogram]
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(Report(target: target, rows: o.rows, dimension: o.dimension,
                                                     counts_consistent: problems.isEmpty, results: rows,
                                                     histograms: histograms)), as: UTF8.self))
    } else {
        print("vecgo-bench tiers: \(o.rows) × \(o.dimension), \(target), \(o.queries) queries, k 10")
        print("tier".padding(toLength: 16, withPad: " ", startingAt: 0) + "what".padding(toLength: 32, withPad: " ", startingAt: 0)
              + "p50 µs".padding(toLength: 12, withPad: " ", startingAt: 0) + "p99 µs".padding(toLength: 12, withPad: " ", startingAt: 0)
              + "remote requests (bytes)")
        for r in rows {
            print(r.tier.padding(toLength: 16, withPad: " ", startingAt: 0) + r.what.padding(toLength: 32, withPad: " ", startingAt: 0)
                  + String(format: "%-12.1f%-12.1f%d (%d)", r.p50_us, r.p99_us, r.remote_requests, r.remote_bytes))
        }
        print("cache histograms (bucket upper bounds): " + histograms.map {
            "\($0.tier) \($0.samples) samples p50 " + String(format: "%.2f µs p99 %.2f µs", $0.p50_us, $0.p99_us)
        }.joined(separator: "; "))
    }
    if let svg = o.svg { try chart(rows, title: "vecgo-bench tiers: \(target)").write(toFile: svg, atomically: true, encoding: .utf8) }
    if !problems.isEmpty {
        throw BenchError(description: "tier counts are inconsistent: " + problems.joined(separator: "; "))
    }
}

/// A horizontal bar chart of p50 latencies on a log scale, as SVG.
func chart(_ rows: [Row], title: String) -> String {
    let width = 760.0, barLeft = 300.0, rowHeight = 28.0
    let maxLog = log10(max(rows.map(\.p50_us).max() ?? 1, 10))
    var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(Double(rows.count) * rowHeight + 60))" \
        font-family="sans-serif" font-size="12">
        <text x="10" y="20" font-size="14">\(title) — p50 latency, log scale</text>

        """
    for (i, r) in rows.enumerated() {
        let y = 40 + Double(i) * rowHeight
        let w = max(2, (log10(max(r.p50_us, 1)) / maxLog) * (width - barLeft - 90))
        out += """
            <text x="10" y="\(y + 15)">\(r.tier): \(r.what)</text>
            <rect x="\(barLeft)" y="\(y)" width="\(String(format: "%.1f", w))" height="20" fill="#4a7bd0"/>
            <text x="\(String(format: "%.1f", barLeft + w + 6))" y="\(y + 15)">\(String(format: "%.1f", r.p50_us)) µs</text>

            """
    }
    return out + "</svg>\n"
}

func require<T>(_ v: T?, _ message: String) throws -> T {
    guard let v else { throw BenchError(description: message) }
    return v
}
