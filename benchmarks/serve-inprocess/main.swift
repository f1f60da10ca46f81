// The in-process side of benchmarks/serve_load.sh: the same search bodies wrk posts to
// `vecgo-serve`, run through the library directly, for the QPS ratio (release build).
import Foundation
import Stores
import Vecgo

/// serve-inprocess-qps STORE QUERIES.json SECONDS CONCURRENCY
@main
struct ServeInProcessQPS {
    struct Body: Decodable { var vector: [Float]; var k: Int? }

    static func main() async throws {
        let a = CommandLine.arguments
        guard a.count == 5, let seconds = Double(a[3]), let concurrency = Int(a[4]) else {
            FileHandle.standardError.write(Data("usage: serve-inprocess-qps STORE QUERIES.json SECONDS CONCURRENCY\n".utf8))
            exit(2)
        }
        let bodies = try JSONDecoder().decode([Body].self, from: Data(contentsOf: URL(fileURLWithPath: a[2])))
        let db = try await Vecgo.open(.remote(try openStore(url: a[1])), .readOnly)
        for b in bodies.prefix(200) { _ = try await db.search(b.vector, k: b.k ?? 10) }  // warm, as wrk's readers are
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var out: [Double] = [], i = worker
                    while clock.now < end {
                        let b = bodies[i % bodies.count]
                        let t = clock.now
                        _ = try await db.search(b.vector, k: b.k ?? 10)
                        let (s, at) = (clock.now - t).components
                        out.append(Double(s) * 1e3 + Double(at) / 1e15)
                        i += concurrency
                    }
                    return out
                }
            }
            var all: [Double] = []
            for try await l in group { all += l }
            return all.sorted()
        }
        let qps = Double(latencies.count) / seconds
        func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(p * Double(latencies.count)))] }
        print(String(format: #"{"qps": %.1f, "queries": %d, "p50_ms": %.3f, "p99_ms": %.3f, "concurrency": %d}"#,
                     qps, latencies.count, pct(0.5), pct(0.99), concurrency))
        try await db.close()
    }
}
