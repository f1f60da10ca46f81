// vecgo-bench scale: a cold reader at scale. Builds a database of N × D rows (generated, or
// from .fvecs files) through the embedded store with injected latency or against an S3
// endpoint, then measures from a fresh reader: open, the cold first query (latency, requests,
// bytes, share of the database), first-touch and warm latency, recall@k against exact ground
// truth; and the writer's speed and peak memory, measured in a child process of its own.
import ArgumentParser
import Dispatch
import Foundation
import IndexCore
import SegmentFormat
import Stores
import Vecgo

/// `vecgo-bench scale`. The writer and the compaction run in child processes of this
/// executable (`--phase write|compact`, hidden), so their peak memory is their own.
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "A cold reader at scale: open, cold first query, first-touch and warm latency, recall; writer speed and memory.",
        discussion: """
            Rows come from a seeded latent Gaussian mixture (--rows, --dim, --clusters, --seed) or from             --base/--queries-file. The database is on the embedded store with --latency (in --dir,             default a temporary directory) or on --endpoint.
            """)

    /// The child process a run starts for the writer or the compaction.
    enum Phase: String, ExpressibleByArgument { case write, compact }

    @Option(help: "Rows (default: 100000 generated, or every row of --base).")
    var rows: Int?

    @Option(name: .customLong("dim"), help: "Dimension of the generated rows.")
    var dimension = 96

    @Option(help: "Queries measured (the first N of --queries-file).")
    var queries = 100

    @Option(help: "Clusters of the generated mixture.")
    var clusters = 256

    @Option(help: "Seed of the generated mixture.")
    var seed: UInt64 = 42

    @Option(help: ArgumentHelp("Rows from this .fvecs file instead of the generator (with --queries-file).", valueName: "file.fvecs"))
    var base: String?

    @Option(name: .customLong("queries-file"), help: ArgumentHelp("Queries from this .fvecs file (with --base).", valueName: "file.fvecs"))
    var queryFile: String?

    @Option(name: .customLong("groundtruth"),
            help: ArgumentHelp("Exact neighbours of --queries-file, an .ivecs file (default: computed).", valueName: "file.ivecs"))
    var groundTruth: String?

    @Option(name: .customLong("latency"),
            help: ArgumentHelp("The embedded store's injected latency: s3-standard, s3-express or none.", valueName: "profile"))
    var latencyName = "s3-standard"

    @Option(help: ArgumentHelp("Measure against this S3 endpoint instead of the embedded store.", valueName: "url"))
    var endpoint: String?

    @Option(help: "The bucket on --endpoint.")
    var bucket: String?

    @Option(help: "The prefix in --bucket (default: a new one per run).")
    var prefix: String?

    @Option(name: .customLong("dir"), help: ArgumentHelp("The embedded store's directory (default: a temporary one).", valueName: "dir"))
    var directory: String?

    @Option(help: "Write the rows in this many commits.")
    var commits = 1

    @Flag(help: "Also compact everything and measure the reader again.")
    var compact = false

    @Option(name: .customLong("small-commits"), help: "100-row commits measured one after another on the written database (each uploads a key-index layer; every 16th merges the deltas).")
    var smallCommits = 1

    @Option(help: "Neighbours per query.")
    var k = 10

    @Option(help: "Partitions probed per segment.")
    var nprobe = SearchOptions().nprobe

    @Option(help: "Re-rank this many candidates with exact vectors (0: the default).")
    var rerank = 0

    @Option(help: ArgumentHelp("The codes scanned: automatic, binary, sq8 or exact.", valueName: "codes"), transform: parseScan)
    var scan = CodeScan.automatic

    @Option(name: .customLong("write-fvecs"),
            help: ArgumentHelp("Also write base.fvecs, queries.fvecs and groundtruth.ivecs here (for the peers).", valueName: "dir"))
    var writeFvecs: String?

    @Flag(help: "Print JSON (one object, or an array with --compact) instead of the report.")
    var json = false

    @Option(help: .hidden)
    var phase: Phase?

    @Option(help: "Rows generated and upserted per slice by the writer.")
    var batch = 10_000

    @Option(name: .customLong("memtable-budget"), help: "The writer's memtableBudget (rows).")
    var memtableBudget: Int?

    @Option(name: .customLong("max-segment-bytes"), help: "The writer's maxSegmentBytes.")
    var maxSegmentBytes: Int?

    @Flag(help: "With --dir or --prefix: measure the database an earlier run wrote there (no write figures).")
    var reuse = false

    func validate() throws {
        try requireLatencyProfile(latencyName)
        guard (base == nil) == (queryFile == nil) else { throw ValidationError("--base and --queries-file go together") }
        try requirePositive(["--rows": rows ?? 1, "--dim": dimension, "--queries": queries, "--clusters": clusters,
                             "--seed": Int(clamping: seed), "--commits": commits, "--k": k, "--nprobe": nprobe, "--batch": batch,
                             "--memtable-budget": memtableBudget ?? 1, "--max-segment-bytes": maxSegmentBytes ?? 1,
                             "--small-commits": smallCommits])
        guard rerank >= 0 else { throw ValidationError("--rerank needs a whole number, got \(rerank)") }
    }

    func run() async throws { try await scaleBench(self) }

    /// The arguments of the child process that runs `phase`: every option the phases read
    /// (`ScaleData`, `scaleStore`, `scaleWritePhase`, `scaleCompactPhase`).
    func childArguments(_ phase: Phase) -> [String] {
        var a = ["scale", "--phase", phase.rawValue, "--dim", String(dimension), "--clusters", String(clusters),
                 "--seed", String(seed), "--latency", latencyName, "--commits", String(commits), "--batch", String(batch)]
        func add(_ flag: String, _ value: (some CustomStringConvertible)?) { if let value { a += [flag, value.description] } }
        add("--rows", rows)
        add("--base", base)
        add("--queries-file", queryFile)
        add("--endpoint", endpoint)
        add("--bucket", bucket)
        add("--prefix", prefix)
        add("--dir", directory)
        add("--memtable-budget", memtableBudget)
        add("--max-segment-bytes", maxSegmentBytes)
        return a
    }
}

/// Parses `--scan`; the parser names the flag in its error.
func parseScan(_ text: String) throws -> CodeScan {
    switch text {
    case "automatic": .automatic
    case "binary": .binary
    case "sq8": .sq8
    case "exact": .exact
    default: throw ValidationError("takes automatic, binary, sq8 or exact, got '\(text)'")
    }
}

/// The peak resident memory of this process so far, in bytes (VmHWM).
func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
    return 0
}

/// What the writer (or compaction) child reports.
struct WritePhaseResult: Codable {
    var rows: Int
    var commits: Int
    var seconds: Double
    var peak_rss_bytes: Int
}

/// One measured configuration of the reader.
struct ScaleRow: Codable {
    var label: String
    var rows: Int
    var dim: Int
    var segments: Int
    var database_bytes: Int
    var write_s: Double
    var write_rows_per_s: Double
    var writer_peak_rss_bytes: Int
    var open_ms: Double
    var open_requests: Int
    var cold_first_query_ms: Double
    var cold_first_query_requests: Int
    var cold_first_query_bytes: Int
    var cold_first_query_share_of_database: Double
    var first_touch_p50_ms: Double
    var first_touch_p99_ms: Double
    var first_touch_bytes_per_query: Double
    var warm_p50_ms: Double
    var warm_p99_ms: Double
    var recall_at_k: Double
    var k: Int
    var nprobe: Int
    /// A commit of 100 rows (50 updates, 50 new keys) on this database: what it uploaded and how long it took.
    var small_commit_bytes: Int?
    var small_commit_ms: Double?
    /// With --small-commits N: the N commits' uploads (total and largest) and latencies.
    var small_commits: Int?
    var small_commits_bytes_total: Int?
    var small_commits_bytes_max: Int?
    var small_commits_ms_p50: Double?
    var small_commits_ms_max: Double?
}

func scaleStore(_ o: ScaleBench) async throws -> any BlobStore {
    if let endpoint = o.endpoint {
        let s3 = try S3Store(try S3Configuration.fromEnvironment(bucket: o.bucket ?? "vecgo-bench", prefix: o.prefix ?? "scale/",
                                                                 endpoint: endpoint))
        try await s3.createBucketIfNeeded()
        return s3
    }
    guard let dir = o.directory else { throw BenchError(description: "internal: no --dir for the embedded store") }
    return LatencyInjectingStore(try LocalDirectoryStore(root: dir), profile: LatencyInjectingStore.Profile(named: o.latencyName)!)
}

/// The writer child: streams the rows into `commits` commits (key = row number).
func scaleWritePhase(_ o: ScaleBench) async throws {
    let data = try ScaleData(o)
    let store = try await scaleStore(o)
    let clock = ContinuousClock(), start = clock.now
    var options: [OpenOption] = [.create(dimension: data.dimension, metric: .l2)]
    if let budget = o.memtableBudget { options.append(.memtableBudget(budget)) }
    if let bytes = o.maxSegmentBytes { options.append(.maxSegmentBytes(bytes)) }
    let w = try await Vecgo.open(.remote(store), options: options)
    let perCommit = (data.count + o.commits - 1) / o.commits
    var next = 0
    while next < data.count {
        let end = min(data.count, next + perCommit)
        var at = next
        while at < end {
            let chunkEnd = min(end, at + o.batch)
            let rows = try data.rows(at..<chunkEnd)
            for r in 0..<(chunkEnd - at) {
                try await w.upsert(id: UInt64(at + r), Array(rows[r * data.dimension..<(r + 1) * data.dimension]))
            }
            at = chunkEnd
        }
        try await w.commit()
        next = end
    }
    try await w.close()
    let d = clock.now - start
    let result = WritePhaseResult(rows: data.count, commits: o.commits, seconds: seconds(d), peak_rss_bytes: peakResidentBytes())
    print(String(data: try JSONEncoder().encode(result), encoding: .utf8)!)
}

/// The compaction child: one `compact()` of everything.
func scaleCompactPhase(_ o: ScaleBench) async throws {
    let store = try await scaleStore(o)
    let clock = ContinuousClock(), start = clock.now
    let w = try await Vecgo.open(.remote(store), options: o.maxSegmentBytes.map { [.maxSegmentBytes($0)] } ?? [])
    let report = try await w.compact(maxRows: Int.max)
    try await w.close()
    let result = WritePhaseResult(rows: report.rowsKept, commits: 1, seconds: seconds(clock.now - start), peak_rss_bytes: peakResidentBytes())
    print(String(data: try JSONEncoder().encode(result), encoding: .utf8)!)
}


/// Runs this executable again for `phase` (its peak memory is the child's own); returns its JSON.
func runPhase(_ phase: ScaleBench.Phase, _ o: ScaleBench) throws -> WritePhaseResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    p.arguments = o.childArguments(phase)
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let bytes = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let line = String(data: bytes, encoding: .utf8)?.split(separator: "\n").last else {
        throw BenchError(description: "the \(phase) phase failed (exit \(p.terminationStatus))")
    }
    return try JSONDecoder().decode(WritePhaseResult.self, from: Data(line.utf8))
}

/// Exact top-k row numbers of each query, streaming over the rows in slices.
func exactNeighbours(_ data: ScaleData, queries: [[Float]], k: Int) throws -> [[Int]] {
    var tops = queries.map { _ in TopK(k: k) }
    let slice = 65_536
    var start = 0
    while start < data.count {
        let end = min(data.count, start + slice), first = start
        let rows = try data.rows(start..<end)
        tops.withUnsafeMutableBufferPointer { t in
            nonisolated(unsafe) let t = t
            DispatchQueue.concurrentPerform(iterations: queries.count) { qi in
                var d = [Float](repeating: 0, count: end - first)
                queries[qi].withUnsafeBufferPointer { q in
                    rows.withUnsafeBufferPointer { b in
                        d.withUnsafeMutableBufferPointer { out in
                            Distance.batch(.l2, query: q.baseAddress!, base: b.baseAddress!, count: end - first, dimension: data.dimension,
                                           out: out.baseAddress!)
                        }
                    }
                }
                for (i, x) in d.enumerated() where x < t[qi].threshold { t[qi].offer(Neighbor(id: UInt64(first + i), distance: x)) }
            }
        }
        start = end
    }
    return tops.map { $0.sorted().map { Int($0.id) } }
}

func scaleBench(_ o: ScaleBench) async throws {
    switch o.phase {
    case .write: return try await scaleWritePhase(o)
    case .compact: return try await scaleCompactPhase(o)
    case nil: break
    }
    let data = try ScaleData(o)
    var work: String?
    var o = o
    if o.endpoint == nil && o.directory == nil {
        work = FileManager.default.temporaryDirectory.path + "/vecgo-scale-\(getpid())"
        o.directory = work! + "/store"
    } else if o.endpoint != nil && o.prefix == nil {
        o.prefix = "scale-\(getpid())/"
    }
    defer { if let work { try? FileManager.default.removeItem(atPath: work) } }

    // Queries and exact ground truth.
    let queries: [[Float]]
    let truth: [[Int]]
    if let qf = o.queryFile {
        queries = Array(try VecsFile.read(qf, as: Float.self).rows.prefix(o.queries))
        if let g = o.groundTruth {
            truth = try VecsFile.read(g, as: Int32.self).rows.prefix(o.queries).map { $0.prefix(o.k).map(Int.init) }
        } else {
            truth = try exactNeighbours(data, queries: queries, k: o.k)
        }
    } else {
        let mixture = data.mixture!
        let flat = mixture.rows(LatentMixture.queryBase..<LatentMixture.queryBase + UInt64(o.queries))
        queries = (0..<o.queries).map { Array(flat[$0 * data.dimension..<($0 + 1) * data.dimension]) }
        truth = try exactNeighbours(data, queries: queries, k: o.k)
    }
    if let dir = o.writeFvecs {
        try writeVecs(dir, data: data, queries: queries, truth: truth)
    }

    var rows: [ScaleRow] = []
    let store = try await scaleStore(o)
    // --reuse with --dir or --prefix: measure a database an earlier run wrote (no write figures).
    let existing = try await store.list(prefix: "MANIFEST-")
    let reused = o.reuse && !existing.isEmpty
    let written = reused ? WritePhaseResult(rows: data.count, commits: o.commits, seconds: .nan, peak_rss_bytes: 0)
        : try runPhase(.write, o)
    rows.append(try await measureReader(label: o.commits == 1 ? "bulk" : "\(o.commits) commits", o, data, store, queries, truth, written))
    let small = try await smallCommits(store, data, count: o.smallCommits)
    (rows[0].small_commit_bytes, rows[0].small_commit_ms) = small[0]
    if small.count > 1 {
        var ms = Samples()
        for c in small { ms.add(c.ms * 1000) }
        rows[0].small_commits = small.count
        rows[0].small_commits_bytes_total = small.reduce(0) { $0 + $1.bytes }
        rows[0].small_commits_bytes_max = small.map(\.bytes).max()
        rows[0].small_commits_ms_p50 = ms.percentile(0.5) / 1000
        rows[0].small_commits_ms_max = ms.percentile(1) / 1000
    }
    if o.compact {
        let compacted = try runPhase(.compact, o)
        rows.append(try await measureReader(label: "\(o.commits) commits, compacted", o, data, store, queries, truth, compacted))
    }
    if o.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(data: try encoder.encode(rows.count == 1 ? AnyEncodable(rows[0]) : AnyEncodable(rows)), encoding: .utf8)!)
        return
    }
    let mib = 1024.0 * 1024.0
    for r in rows {
        print("""
            == \(r.label): \(r.rows) × \(r.dim), \(r.segments) segment(s), \(String(format: "%.1f", Double(r.database_bytes) / mib)) MiB \
            (\(o.endpoint.map { "endpoint \($0)" } ?? "embedded store, \(o.latencyName)"))
            write            \(String(format: "%.1f s, %.0f rows/s, peak RSS %.0f MiB", r.write_s, r.write_rows_per_s, Double(r.writer_peak_rss_bytes) / mib))
            open             \(String(format: "%.1f ms, %d requests", r.open_ms, r.open_requests))
            cold 1st query   \(String(format: "%.1f ms, %d requests, %.2f MiB = %.3f%% of the database", r.cold_first_query_ms, r.cold_first_query_requests, Double(r.cold_first_query_bytes) / mib, 100 * r.cold_first_query_share_of_database))
            first touch      \(String(format: "p50 %.1f ms, p99 %.1f ms, %.2f MiB per query", r.first_touch_p50_ms, r.first_touch_p99_ms, r.first_touch_bytes_per_query / mib))
            warm             \(String(format: "p50 %.2f ms, p99 %.2f ms", r.warm_p50_ms, r.warm_p99_ms))
            recall@\(r.k)        \(String(format: "%.3f", r.recall_at_k)) (nprobe \(r.nprobe))
            """)
        if let bytes = r.small_commit_bytes, let ms = r.small_commit_ms {
            print("100-row commit   \(String(format: "%.1f ms, %d bytes uploaded", ms, bytes))")
        }
        if let n = r.small_commits, let total = r.small_commits_bytes_total, let most = r.small_commits_bytes_max,
           let p50 = r.small_commits_ms_p50, let slowest = r.small_commits_ms_max {
            print("\(n) such commits  \(String(format: "%.1f MiB uploaded in all, at most %d bytes in one; p50 %.1f ms, max %.1f ms", Double(total) / mib, most, p50, slowest))")
        }
    }
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

func measureReader(label: String, _ o: ScaleBench, _ data: ScaleData, _ store: any BlobStore, _ queries: [[Float]],
                   _ truth: [[Int]], _ written: WritePhaseResult) async throws -> ScaleRow {
    let clock = ContinuousClock()
    let t0 = clock.now
    let reader = try await Vecgo.open(.remote(store), .readOnly)
    let openMillis = seconds(clock.now - t0) * 1000
    let openRequests = await reader.tierCounters().remoteRequests
    // The database's bytes: the newest manifest and everything it references.
    let manifests = try await store.list(prefix: "MANIFEST-")
    let newest = try require(manifests.last, "no manifest")
    let manifest = try Manifest.decode(try await store.read(newest.name), object: newest.name)
    let databaseBytes = Int(newest.size) + manifest.pkIndexLayers.reduce(0) { $0 + Int($1.size) }
        + manifest.segments.reduce(0) { $0 + Int($1.size) }
    let options = SearchOptions(nprobe: o.nprobe, scan: o.scan, rerank: o.rerank)
    var found = 0
    let (firstHits, cold) = try await reader.searchWithStats(queries[0], k: o.k, options: options)
    found += Set(firstHits.map { Int($0.id) }).intersection(truth[0]).count
    var touch = Samples(), warm = Samples()
    var touchBytes = 0
    for (i, q) in queries.enumerated().dropFirst() {
        let (hits, s) = try await reader.searchWithStats(q, k: o.k, options: options)
        touch.add(s.latencyMicros)
        touchBytes += s.tiers.remoteBytes
        found += Set(hits.map { Int($0.id) }).intersection(truth[i]).count
    }
    for q in queries {
        let (_, s) = try await reader.searchWithStats(q, k: o.k, options: options)
        warm.add(s.latencyMicros)
    }
    try await reader.close()
    return ScaleRow(label: label, rows: data.count, dim: data.dimension, segments: manifest.segments.count, database_bytes: databaseBytes,
                    write_s: written.seconds, write_rows_per_s: Double(written.rows) / written.seconds,
                    writer_peak_rss_bytes: written.peak_rss_bytes, open_ms: openMillis, open_requests: openRequests,
                    cold_first_query_ms: cold.latencyMicros / 1000, cold_first_query_requests: cold.tiers.remoteRequests,
                    cold_first_query_bytes: cold.tiers.remoteBytes,
                    cold_first_query_share_of_database: Double(cold.tiers.remoteBytes) / Double(databaseBytes),
                    first_touch_p50_ms: touch.percentile(0.5) / 1000, first_touch_p99_ms: touch.percentile(0.99) / 1000,
                    first_touch_bytes_per_query: queries.count > 1 ? Double(touchBytes) / Double(queries.count - 1) : 0,
                    warm_p50_ms: warm.percentile(0.5) / 1000, warm_p99_ms: warm.percentile(0.99) / 1000,
                    recall_at_k: Double(found) / Double(queries.count * o.k), k: o.k, nprobe: o.nprobe)
}

/// `count` commits of 100 rows each on the database by a writer that has committed before (it
/// has read the key index once, as a long-lived writer has): 50 of its keys updated, 50 new
/// keys. Returns the bytes each uploaded (segment, pk-index layer, manifest) and its latency.
func smallCommits(_ store: any BlobStore, _ data: ScaleData, count: Int) async throws -> [(bytes: Int, ms: Double)] {
    let counting = CountingStore(store)
    let w = try await Vecgo.open(.remote(counting))
    let fresh = try data.rows(0..<100)
    func write(_ offset: Int) async throws {
        for i in 0..<100 {
            let key = i < 50 ? UInt64(i * (data.count / 50) + offset) : UInt64(data.count + Int.random(in: 0..<1_000_000_000))
            try await w.upsert(id: key, Array(fresh[i * data.dimension..<(i + 1) * data.dimension]))
        }
    }
    try await write(1)
    try await w.commit()  // the first commit waits for the key index the writer reads once
    var out: [(bytes: Int, ms: Double)] = []
    for c in 0..<count {
        try await write(c % 2 == 0 ? 0 : 2 + c)
        let before = counting.bytesWritten.value
        let clock = ContinuousClock()
        let t = clock.now
        try await w.commit()
        out.append((counting.bytesWritten.value - before, seconds(clock.now - t) * 1000))
    }
    try await w.close()
    return out
}

/// Writes the set as base.fvecs, queries.fvecs and groundtruth.ivecs (for the peers).
func writeVecs(_ dir: String, data: ScaleData, queries: [[Float]], truth: [[Int]]) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    func append<T: BitwiseCopyable>(_ handle: FileHandle, _ row: [T]) throws {
        var bytes = Data()
        withUnsafeBytes(of: Int32(row.count).littleEndian) { bytes.append(contentsOf: $0) }
        row.withUnsafeBytes { bytes.append(contentsOf: $0) }
        try handle.write(contentsOf: bytes)
    }
    func create(_ name: String) throws -> FileHandle {
        FileManager.default.createFile(atPath: dir + "/" + name, contents: nil)
        return try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + name))
    }
    let base = try create("base.fvecs")
    var start = 0
    while start < data.count {
        let end = min(data.count, start + 65_536)
        let rows = try data.rows(start..<end)
        for r in 0..<(end - start) { try append(base, Array(rows[r * data.dimension..<(r + 1) * data.dimension])) }
        start = end
    }
    try base.close()
    let q = try create("queries.fvecs")
    for row in queries { try append(q, row) }
    try q.close()
    let g = try create("groundtruth.ivecs")
    for row in truth { try append(g, row.map { Int32($0) }) }
    try g.close()
}
