// vecgo-bench fairness: concurrent writers on disjoint keys against one S3 server, with default
// commit options: how often the writer changes between versions, how long each writer waits
// for its first commit, commit latency and the `.conflict`s they meet.
import ArgumentParser
import Foundation
import Stores
import Vecgo

/// `vecgo-bench fairness`.
struct FairnessBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fairness",
        abstract: "Concurrent writers on disjoint keys with default commit options: writer changes, first-commit waits, conflicts.")

    @Option(help: ArgumentHelp("The S3 server (moto, say).", valueName: "url"))
    var endpoint: String

    @Option(help: "Concurrent writers, each with its own handle.")
    var writers = 8

    @Option(help: "Commits per writer.")
    var commits = 50

    @Option(help: "Rows per commit.")
    var rows = 20

    @Option(name: .customLong("dim"), help: "Vector dimension.")
    var dimension = 16

    @Flag(help: "Print one JSON object instead of the summary.")
    var json = false

    func validate() throws {
        guard !endpoint.isEmpty else { throw ValidationError("--endpoint needs a URL") }
        try requirePositive(["--writers": writers, "--commits": commits, "--rows": rows, "--dim": dimension])
    }

    func run() async throws { try await fairnessBench(self) }
}

struct FairnessResult: Codable {
    var writers: Int
    var commits_per_writer: Int
    var versions: Int
    /// Consecutive versions committed by different writers.
    var writer_changes: Int
    /// Per writer, seconds from the common start to its first acknowledged commit.
    var first_commit_wait_s: [Double]
    var commit_p50_ms: Double
    var commit_p99_ms: Double
    var commit_max_ms: Double
    /// `commit()` calls that threw `.conflict` (retried by the bench).
    var conflicts: Int
    /// `commit()` calls that threw anything else (retried by the bench).
    var other_errors: Int
}

func fairnessBench(_ o: FairnessBench) async throws {
    guard AWSEnvironment.current["AWS_ACCESS_KEY_ID"] != nil else { throw BenchError(description: "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (moto accepts any)") }
    let bucket = "vecgo-bench-fair-\(UInt32.random(in: 0...UInt32.max))"
    let store = try S3Store(try .fromEnvironment(bucket: bucket, prefix: "db/", endpoint: o.endpoint))
    try await store.createBucketIfNeeded()
    let setup = try await Vecgo.open(.remote(store), .create(dimension: o.dimension, metric: .l2))
    try await setup.upsert(id: 0, [Float](repeating: 0, count: o.dimension))
    try await setup.close()
    let clock = ContinuousClock()
    let start = clock.now
    struct WriterOutcome { var versions: [UInt64] = []; var first: Duration?; var latencies: [Duration] = []; var conflicts = 0; var others = 0 }
    let outcomes = try await withThrowingTaskGroup(of: WriterOutcome.self) { group in
        for w in 0..<o.writers {
            group.addTask {
                var out = WriterOutcome()
                let h = try await Vecgo.open(.remote(store))
                for c in 0..<o.commits {
                    for r in 0..<o.rows {
                        try await h.upsert(id: UInt64(1_000_000 * (w + 1) + c * o.rows + r),
                                           (0..<o.dimension).map { _ in Float.random(in: 0..<1) })
                    }
                    let t = clock.now
                    while true {
                        do {
                            out.versions.append(try await h.commit())
                            break
                        } catch let e as VecgoError where e.code == .conflict {
                            out.conflicts += 1
                        } catch {
                            out.others += 1
                            guard out.others < 1_000 else { throw error }
                        }
                    }
                    out.latencies.append(clock.now - t)
                    if out.first == nil { out.first = clock.now - start }
                }
                try await h.close()
                return out
            }
        }
        var all: [WriterOutcome] = []
        for try await r in group { all.append(r) }
        return all
    }
    var writerOf: [UInt64: Int] = [:]
    for (w, r) in outcomes.enumerated() { for v in r.versions { writerOf[v] = w } }
    let ordered = writerOf.keys.sorted()
    let changes = zip(ordered, ordered.dropFirst()).filter { writerOf[$0] != writerOf[$1] }.count
    var samples = Samples()
    for r in outcomes { for l in r.latencies { samples.add(l) } }
    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    let result = FairnessResult(writers: o.writers, commits_per_writer: o.commits, versions: ordered.count, writer_changes: changes,
                                first_commit_wait_s: outcomes.map { seconds($0.first ?? .zero) }.sorted(),
                                commit_p50_ms: samples.percentile(0.5) / 1000, commit_p99_ms: samples.percentile(0.99) / 1000,
                                commit_max_ms: samples.percentile(1) / 1000,
                                conflicts: outcomes.map(\.conflicts).reduce(0, +), other_errors: outcomes.map(\.others).reduce(0, +))
    if o.json {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try e.encode(result), as: UTF8.self))
        return
    }
    print("\(o.writers) writers × \(o.commits) commits of \(o.rows) rows on disjoint keys, default options; server \(o.endpoint)")
    print("versions: \(result.versions), writer changes between consecutive versions: \(result.writer_changes)")
    print("first-commit wait per writer (s): \(result.first_commit_wait_s.map { String(format: "%.2f", $0) }.joined(separator: " "))")
    print(String(format: "commit latency p50 %.1f ms, p99 %.1f ms, max %.1f ms", result.commit_p50_ms, result.commit_p99_ms, result.commit_max_ms))
    print("commit() calls that threw .conflict: \(result.conflicts), other errors: \(result.other_errors)")
}
