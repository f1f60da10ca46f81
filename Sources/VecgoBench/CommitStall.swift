// vecgo-bench commit-stall: search latency on a writer handle while it commits a large batch,
// against the same handle idle (issue 12: p99 during the commit should stay within 2× idle).
import ArgumentParser
import Foundation
import Stores
import Vecgo

/// `vecgo-bench commit-stall`.
struct CommitStallBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit-stall",
        abstract: "Search latency on a writer handle while it commits --rows rows, against the same handle idle.",
        discussion: """
            On the embedded in-memory store: --base-rows rows are inserted and committed; --searches \
            searches are timed idle; --rows more rows are inserted (not timed); then commit() runs in \
            one task while another searches the same handle in a tight loop until the commit returns. \
            Latency is measured around each call, so time spent waiting for the handle counts. \
            The idle figures are also taken with the rows pending (before the commit, once a first \
            search has had their graph built in the background; --unsearched skips that, so the \
            commit's searches scan rows no graph holds) and after it.
            """)

    @Option(help: "Rows inserted and then committed while searches run.")
    var rows = 100_000

    @Option(name: .customLong("dim"), help: "Vector dimension.")
    var dimension = 96

    @Option(name: .customLong("base-rows"), help: "Rows committed before, so searches have something to search.")
    var baseRows = 20_000

    @Option(help: "Searches timed for each idle figure.")
    var searches = 1_000

    @Option(help: "Neighbours per search.")
    var k = 10

    @Option(help: "Seed of the generated rows (the latent mixture of `scale`).")
    var seed: UInt64 = 42

    @Option(name: .customLong("show-slow"), help: "Also list each search during the commit slower than this many µs, with when it started.")
    var showSlow: Double?

    @Flag(name: .customLong("unsearched"), help: "Skip the idle searches with the rows pending: the commit starts on rows no search has touched.")
    var unsearched = false

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        try requirePositive(["--rows": rows, "--dim": dimension, "--base-rows": baseRows, "--searches": searches, "--k": k])
        if let showSlow, !(showSlow > 0) { throw ValidationError("--show-slow needs a positive number of µs, got \(showSlow)") }
    }

    func run() async throws { try await commitStallBench(self) }
}

/// One set of search latencies.
struct StallRow: Codable {
    var phase: String
    var searches: Int
    var p50_us: Double
    var p99_us: Double
    var max_us: Double

    init(_ phase: String, _ s: Samples) {
        self.phase = phase
        searches = s.values.count
        p50_us = s.percentile(0.5)
        p99_us = s.percentile(0.99)
        max_us = s.percentile(1)
    }
}

/// What `vecgo-bench commit-stall --json` prints.
struct StallReport: Codable {
    var rows: Int
    var base_rows: Int
    var dimension: Int
    var k: Int
    var commit_s: Double
    var results: [StallRow]
    /// p99 during the commit over p99 idle before the rows were inserted (the target: ≤ 2).
    var p99_ratio: Double
    /// p99 during the commit over p99 idle with the rows pending (the same rows searched; nil with --unsearched).
    var p99_ratio_vs_pending: Double?
}

func commitStallBench(_ o: CommitStallBench) async throws {
    let mixture = LatentMixture(dimension: o.dimension, clusters: 256, seed: o.seed)
    let queryCount = 256
    let flatQueries = mixture.rows(LatentMixture.queryBase..<LatentMixture.queryBase + UInt64(queryCount))
    let queries = (0..<queryCount).map { Array(flatQueries[$0 * o.dimension..<($0 + 1) * o.dimension]) }
    let db = try await Vecgo.open(.remote(MemoryBlobStore()), .create(dimension: o.dimension, metric: .l2))
    func insert(_ range: Range<Int>) async throws {
        var at = range.lowerBound
        while at < range.upperBound {
            let end = min(range.upperBound, at + 10_000)
            let flat = mixture.rows(UInt64(at)..<UInt64(end))
            for r in 0..<(end - at) { try await db.upsert(id: UInt64(at + r), Array(flat[r * o.dimension..<(r + 1) * o.dimension])) }
            at = end
        }
    }
    let clock = ContinuousClock()
    func idle() async throws -> Samples {
        for q in queries.prefix(32) { _ = try await db.search(q, k: o.k) }  // warm-up
        var s = Samples()
        for i in 0..<o.searches {
            let t = clock.now
            _ = try await db.search(queries[i % queryCount], k: o.k)
            s.add(clock.now - t)
        }
        return s
    }

    try await insert(0..<o.baseRows)
    try await db.commit()
    let before = try await idle()
    try await insert(o.baseRows..<o.baseRows + o.rows)
    // A search over the pending rows starts their graph's build in the background (searches
    // scan the rows it lacks meanwhile); "idle" with rows pending is once that is done.
    let warmStart = clock.now
    if !o.unsearched {
        _ = try await db.search(queries[0], k: o.k)
        while await db.pendingRowsOutsideGraph > 0 { try await Task.sleep(for: .milliseconds(20)) }
    }
    let graphTime = clock.now - warmStart
    let pending = o.unsearched ? Samples() : try await idle()

    // The commit in one task; searches on the same handle from this one until it returns.
    let done = AtomicCounter()
    let committing = Task {
        defer { done.increment() }
        let t = clock.now
        try await db.commit()
        return clock.now - t
    }
    var during = Samples()
    var slow: [(start: Duration, took: Duration)] = []
    let commitStart = clock.now
    var i = 0
    repeat {  // at least one search, so a commit faster than a search still reports a figure
        let t = clock.now
        _ = try await db.search(queries[i % queryCount], k: o.k)
        during.add(clock.now - t)
        if let limit = o.showSlow, clock.now - t > .microseconds(limit) { slow.append((t - commitStart, clock.now - t)) }
        i += 1
    } while done.value == 0
    let commitTime = try await committing.value
    let after = try await idle()
    try await db.close()

    var results = [StallRow("idle, \(o.baseRows) rows committed", before)]
    if !o.unsearched { results.append(StallRow("idle, \(o.rows) rows pending", pending)) }
    results += [StallRow("during the commit of \(o.rows) rows", during), StallRow("idle, after the commit", after)]
    let report = StallReport(rows: o.rows, base_rows: o.baseRows, dimension: o.dimension, k: o.k, commit_s: seconds(commitTime),
                             results: results, p99_ratio: during.percentile(0.99) / before.percentile(0.99),
                             p99_ratio_vs_pending: o.unsearched ? nil : during.percentile(0.99) / pending.percentile(0.99))
    if o.json {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(report), as: UTF8.self))
        return
    }
    print("vecgo-bench commit-stall: \(o.baseRows) + \(o.rows) rows × \(o.dimension), k \(o.k), embedded in-memory store, one writer handle")
    print("phase".padding(toLength: 40, withPad: " ", startingAt: 0) + "searches  p50 µs      p99 µs      max µs")
    for r in results {
        print(r.phase.padding(toLength: 40, withPad: " ", startingAt: 0)
              + String(format: "%-10d%-12.1f%-12.1f%.1f", r.searches, r.p50_us, r.p99_us, r.max_us))
    }
    if !o.unsearched { print(String(format: "the pending rows' graph was built in the background in %.2f s after the first search", seconds(graphTime))) }
    for s in slow {
        print(String(format: "slow search during the commit: started at %.1f ms, took %.1f ms", seconds(s.start) * 1e3, seconds(s.took) * 1e3))
    }
    let vsPending = report.p99_ratio_vs_pending.map { String(format: "; during / pending %.2f", $0) } ?? ""
    print(String(format: "commit %.2f s; p99 during / p99 idle %.2f (target ≤ 2)", report.commit_s, report.p99_ratio) + vsPending)
}
