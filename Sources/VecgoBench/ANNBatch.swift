// `vecgo-bench ann --batch N`: N queries searched at once (flat or IVF batch search, all
// threads), against the same queries one at a time and, with `--peers`, faiss in the same run.
import Dispatch
import Foundation
import IndexCore

extension ANNBench {
    struct BatchReport: Codable {
        var index: String
        var rows: Int
        var dimension: Int
        var batch: Int
        var k: Int
        var threads: Int
        var kernel: String
        var nprobe: Int?
        var recall: Double
        var qps_batch: Double
        var qps_single_queries: Double
        var peer: String?
        var peer_qps_batch: Double?
        var peer_recall: Double?
    }

    func runBatch(data: [Float], dimension dim: Int, queries qs: [[Float]], truth: [[UInt64]], ivf: IVFIndex?, nlist: Int,
                  buildSeconds: Double) throws {
        guard index != "hnsw" else { throw BenchError(description: "--batch runs flat or ivf") }
        let clock = ContinuousClock()
        let k = self.k, metric = self.metric, nprobe = self.nprobe, threads = self.threads
        let batchRows = (0..<batch).map { qs[$0 % qs.count] }
        let flatQueries = batchRows.flatMap { $0 }
        let run: () -> [[UInt64]] = {
            if let ivf { return ivf.search(batch: flatQueries, k: k, nprobe: nprobe, threads: threads).map { $0.map(\.id) } }
            return data.withUnsafeBufferPointer {
                BatchSearch.flat(queries: flatQueries, vectors: $0, dimension: dim, metric: metric, k: k, threads: threads)
            }.map { $0.map(\.id) }
        }
        _ = run()  // warm-up: page in the vectors
        var best = Double.infinity
        var results: [[UInt64]] = []
        for _ in 0..<5 {  // best of five runs: the figure least disturbed by other load
            let t = clock.now
            results = run()
            best = min(best, seconds(clock.now - t))
        }
        let qps = Double(batch) / best
        let hits = (0..<min(batch, qs.count)).reduce(0) { $0 + Set(results[$1]).intersection(truth[$1].prefix(k)).count }
        let recall = Double(hits) / Double(min(batch, qs.count) * k)
        // The same queries one at a time, spread over the threads.
        let single: @Sendable ([Float]) -> Void = { q in
            if let ivf { _ = ivf.search(q, k: k, nprobe: nprobe); return }
            var top = TopK(k: k)
            data.withUnsafeBufferPointer { FlatSearch.search(query: q, vectors: $0, dimension: dim, metric: metric, ids: nil, into: &top) }
        }
        let ts = clock.now
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            for i in stride(from: w, to: batchRows.count, by: threads) { single(batchRows[i]) }
        }
        let singleQPS = Double(batch) / seconds(clock.now - ts)
        var report = BatchReport(index: index, rows: data.count / dim, dimension: dim, batch: batch, k: k, threads: threads,
                                 kernel: Distance.kernelName, nprobe: ivf == nil ? nil : nprobe, recall: recall,
                                 qps_batch: qps, qps_single_queries: singleQPS)
        if let peers {
            var args = [peers, "--base", base, "--queries", queries, "--index", index, "--batch", String(batch),
                        "--threads", String(threads), "--k", String(k)]
            if let groundTruth { args += ["--groundtruth", groundTruth] }
            if index == "ivf" { args += ["--nlist", String(nlist), "--nprobe", String(nprobe)] }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3"] + args
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let bytes = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0,
                  let doc = try JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
                throw BenchError(description: "\(peers) failed (status \(p.terminationStatus))")
            }
            report.peer = doc["peer"] as? String
            report.peer_qps_batch = doc["qps_batch"] as? Double
            report.peer_recall = doc["recall"] as? Double
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        print("vecgo \(index) batch: \(report.rows) × \(dim), \(batch) queries at once, k \(k), \(threads) threads, kernel \(Distance.kernelName)"
              + (ivf == nil ? "" : ", nprobe \(nprobe) of \(nlist)"))
        print(String(format: "batch QPS %.0f (recall@%d %.4f); one query at a time %.0f (×%.2f)", qps, k, recall, singleQPS,
                     qps / singleQPS))
        if let name = report.peer, let peerQPS = report.peer_qps_batch {
            print(String(format: "%@ batch QPS %.0f (recall %.4f); vecgo / peer ×%.2f", name, peerQPS, report.peer_recall ?? .nan,
                         qps / peerQPS))
        }
    }
}
