// vecgo-bench ann: an in-memory index (HNSW, IVF or flat) on .fvecs files: build time, QPS and
// recall over a sweep, or filtered (ANNFilter.swift) and batched (ANNBatch.swift) searches.
import ArgumentParser
import Dispatch
import Foundation
import IndexCore

/// `vecgo-bench ann`: build time, QPS (one thread and all cores) and recall@k of one index over
/// a sweep of ef (HNSW) or nprobe (IVF), on standard `.fvecs`/`.ivecs` files.
struct ANNBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ann",
        abstract: "Build time, QPS and recall@k of one in-memory index over an ef or nprobe sweep, on .fvecs files.")

    @Option(help: ArgumentHelp("The rows, an .fvecs file.", valueName: "file.fvecs"))
    var base: String

    @Option(help: ArgumentHelp("The queries, an .fvecs file.", valueName: "file.fvecs"))
    var queries: String

    @Option(name: .customLong("groundtruth"),
            help: ArgumentHelp("The exact neighbours, an .ivecs file (default: computed by a flat scan).", valueName: "file.ivecs"))
    var groundTruth: String?

    @Option(help: "The index: hnsw, ivf or flat.")
    var index = "hnsw"

    @Option(help: "Neighbours per query.")
    var k = 10

    @Option(help: "Threads of the all-cores figures (default: the active processor count).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "HNSW: links per node.")
    var m = 16

    @Option(name: .customLong("ef-construction"), help: "HNSW: the candidate list while building.")
    var efConstruction = 200

    @Option(help: "IVF: lists (default: the square root of the row count).")
    var nlist: Int?

    @Option(help: ArgumentHelp("The metric: l2, cosine or dot.", valueName: "metric"), transform: parseMetric)
    var metric = Metric.l2

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    @Option(name: .customLong("sq8-rerank"), help: "IVF: scan SQ8 codes and re-rank k × R candidates with float32 (0: off).")
    var sq8Rerank = 0

    /// `--filter-selectivity`: filtered searches at these shares of matching rows instead of the sweep.
    @Option(name: .customLong("filter-selectivity"),
            help: ArgumentHelp("Filtered searches at these shares of matching rows instead of the sweep.", valueName: "s[,s...]"),
            transform: parseShares)
    var filterSelectivity: [Double]?

    /// `--batch`: this many queries searched at once instead of the sweep (0: off).
    @Option(help: "Search this many queries at once (flat or ivf) instead of the sweep (0: off).")
    var batch = 0

    /// `--ef` / `--nprobe`: the unfiltered setting the filter planner widens, and IVF batch's nprobe.
    @Option(help: "HNSW: the unfiltered ef the filter planner widens.")
    var ef = 64

    @Option(help: "IVF: the lists probed by filtered and batch searches.")
    var nprobe = 8

    /// `--peers`: the peers script run in batch mode for faiss's figures in the same run.
    @Option(help: ArgumentHelp("With --batch: run this peers script (benchmarks/peers.py) for faiss's figures.", valueName: "script"))
    var peers: String?

    /// `--filter-plan auto|scan|index`: the planner's choice, or one forced (to calibrate it).
    @Option(name: .customLong("filter-plan"), help: "With --filter-selectivity: auto (the planner's choice), scan or index.")
    var forcePlan = "auto"

    var filterSelectivities: [Double] { filterSelectivity ?? [] }

    func validate() throws {
        guard ["hnsw", "ivf", "flat"].contains(index) else { throw ValidationError("--index takes hnsw, ivf or flat, got '\(index)'") }
        guard ["auto", "scan", "index"].contains(forcePlan) else {
            throw ValidationError("--filter-plan takes auto, scan or index, got '\(forcePlan)'")
        }
        try requirePositive(["--k": k, "--threads": threads, "--m": m, "--ef-construction": efConstruction, "--ef": ef,
                             "--nprobe": nprobe, "--nlist": nlist ?? 1])
        guard sq8Rerank >= 0 else { throw ValidationError("--sq8-rerank needs a whole number, got \(sq8Rerank)") }
        guard batch >= 0 else { throw ValidationError("--batch needs a whole number, got \(batch)") }
    }

    struct Point: Codable {
        var parameter: String
        var value: Int
        var recall: Double
        var qps_1_thread: Double
        var qps_all_threads: Double
        /// One thread, from the thread's CPU time rather than the wall clock: steadier when
        /// other processes share the cores.
        var qps_1_thread_cpu: Double
    }

    struct Report: Codable {
        var index: String
        var sq8_rerank: Int
        var rows: Int
        var dimension: Int
        var queries: Int
        var k: Int
        var threads: Int
        var kernel: String
        var build_seconds: Double
        /// The build's CPU time (it runs on one thread).
        var build_cpu_seconds: Double
        var memory_bytes_per_vector: Double
        var m: Int?
        var ef_construction: Int?
        var nlist: Int?
        var sweep: [Point]
    }

    func run() throws {
        let (baseRows, dim) = try VecsFile.read(base, as: Float.self)
        let (queryRows, qdim) = try VecsFile.read(queries, as: Float.self)
        guard dim == qdim else { throw BenchError(description: "base has \(dim) dimensions, queries \(qdim)") }
        let normalize = metric == .cosine
        let data = normalize ? baseRows.map { Distance.normalized($0) } : baseRows
        let qs = normalize ? queryRows.map { Distance.normalized($0) } : queryRows
        let flat = data.flatMap { $0 }
        let truth: [[UInt64]]
        if let groundTruth {
            truth = try VecsFile.read(groundTruth, as: Int32.self).rows.map { $0.prefix(k).map { UInt64($0) } }
        } else {
            truth = flat.withUnsafeBufferPointer { v in
                qs.map { q in
                    var top = TopK(k: k)
                    FlatSearch.search(query: q, vectors: v, dimension: dim, metric: metric, ids: nil, into: &top)
                    return top.sorted().map(\.id)
                }
            }
        }
        let clock = ContinuousClock()
        var search: (@Sendable ([Float], Int) -> [UInt64])!
        var sweep: [(String, Int)] = []
        var memory = 0
        var hnswIndex: HNSWIndex?
        var ivfIndex: IVFIndex?
        let start = clock.now
        let startCPU = threadCPUSeconds()
        let nlist = self.nlist ?? max(1, Int(Double(data.count).squareRoot()))
        switch index {
        case "hnsw":
            let h = HNSWIndex(dimension: dim, metric: metric, parameters: .init(m: m, efConstruction: efConstruction))
            for (i, v) in data.enumerated() { h.insert(v, id: UInt64(i)) }
            let k = self.k
            hnswIndex = h
            search = { q, ef in h.search(q, k: k, ef: ef).map(\.id) }
            sweep = [10, 16, 32, 48, 64, 96, 128, 256].map { ("ef", $0) }
            memory = h.memoryBytes
        case "ivf":
            let ivf = IVFIndex(vectors: flat, ids: (0..<data.count).map(UInt64.init), dimension: dim, metric: metric,
                               nlist: nlist, sq8: sq8Rerank > 0)
            ivfIndex = ivf
            let k = self.k, rerank = sq8Rerank
            search = { q, nprobe in ivf.search(q, k: k, nprobe: nprobe, rerank: rerank).map(\.id) }
            sweep = [1, 2, 4, 8, 16, 32, 64].filter { $0 <= nlist }.map { ("nprobe", $0) }
            memory = ivf.memoryBytes
        default:
            let k = self.k, metric = self.metric
            search = { q, _ in
                var top = TopK(k: k)
                flat.withUnsafeBufferPointer {
                    FlatSearch.search(query: q, vectors: $0, dimension: dim, metric: metric, ids: nil, into: &top)
                }
                return top.sorted().map(\.id)
            }
            sweep = [("exact", 0)]
            memory = flat.count * 4
        }
        let buildSeconds = seconds(clock.now - start)
        let buildCPU = threadCPUSeconds() - startCPU
        if !filterSelectivities.isEmpty {
            return try runFiltered(data: flat, dimension: dim, queries: qs, hnsw: hnswIndex, ivf: ivfIndex, buildSeconds: buildSeconds)
        }
        if batch > 0 {
            return try runBatch(data: flat, dimension: dim, queries: qs, truth: truth, ivf: ivfIndex, nlist: nlist,
                                buildSeconds: buildSeconds)
        }
        var points: [Point] = []
        for (name, value) in sweep {
            // One thread: every query in order.
            var results = [[UInt64]](repeating: [], count: qs.count)
            let t1 = clock.now, c1 = threadCPUSeconds()
            for (i, q) in qs.enumerated() { results[i] = search(q, value) }
            let single = Double(qs.count) / seconds(clock.now - t1)
            let singleCPU = Double(qs.count) / (threadCPUSeconds() - c1)
            let hits = zip(results, truth).reduce(0) { $0 + Set($1.0).intersection($1.1.prefix(k)).count }
            // All threads: queries split across `threads` workers.
            let tn = clock.now
            let s = search!, threads = self.threads
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                for i in stride(from: w, to: qs.count, by: threads) { _ = s(qs[i], value) }
            }
            let multi = Double(qs.count) / seconds(clock.now - tn)
            points.append(Point(parameter: name, value: value, recall: Double(hits) / Double(qs.count * k),
                                qps_1_thread: single, qps_all_threads: multi, qps_1_thread_cpu: singleCPU))
        }
        let report = Report(index: index, sq8_rerank: sq8Rerank, rows: data.count, dimension: dim, queries: qs.count, k: k, threads: threads,
                            kernel: Distance.kernelName, build_seconds: buildSeconds, build_cpu_seconds: buildCPU,
                            memory_bytes_per_vector: Double(memory) / Double(data.count),
                            m: index == "hnsw" ? m : nil, ef_construction: index == "hnsw" ? efConstruction : nil,
                            nlist: index == "ivf" ? nlist : nil, sweep: points)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print("vecgo \(index): \(data.count) × \(dim), \(qs.count) queries, k \(k), kernel \(Distance.kernelName)")
            print(String(format: "build %.2f s (CPU %.2f s), %.0f bytes per vector", buildSeconds, buildCPU,
                         report.memory_bytes_per_vector))
            for p in points {
                print(String(format: "%@ %4d  recall@%d %.4f  QPS 1 thread %9.0f (CPU time %9.0f)  QPS %d threads %9.0f",
                             p.parameter, p.value, k, p.recall, p.qps_1_thread, p.qps_1_thread_cpu, threads,
                             p.qps_all_threads))
            }
        }
    }
}

/// CPU seconds the calling thread has used.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Parses `--metric`; the parser names the flag in its error.
func parseMetric(_ text: String) throws -> Metric {
    guard let m = Metric(name: text) else { throw ValidationError("unknown metric '\(text)' (l2, cosine or dot)") }
    return m
}

/// Parses `--filter-selectivity`: shares in (0, 1], comma-separated.
func parseShares(_ text: String) throws -> [Double] {
    try text.split(separator: ",").map {
        guard let s = Double($0), s > 0, s <= 1 else {
            throw ValidationError("takes shares in (0, 1], comma-separated, got '\(text)'")
        }
        return s
    }
}
