// The `vecgo-bench` command: its subcommands (one `ParsableCommand` per benchmark, each in its
// own file) and the checks their options share. A benchmark's failure (`BenchError`) is
// printed by the parser as `Error: <message>` with exit status 1; a usage error exits 64.
import ArgumentParser
import Stores

@main
struct VecgoBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vecgo-bench",
        abstract: "Vecgo's benchmarks: tier latency, ANN recall/QPS, commit paths, writer fairness, scale, commit stalls.",
        discussion: """
            Timings are reported, never asserted; counts that must agree with the design (remote \
            requests per tier, versions committed exactly once) fail the run when they do not. \
            The S3 benchmarks read AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (moto accepts any).
            """,
        subcommands: [TiersBench.self, ANNBench.self, CommitsBench.self, FairnessBench.self, ScaleBench.self,
                      CommitStallBench.self])
}

/// A benchmark that could not run or whose counts came out inconsistent; its message is the whole story.
struct BenchError: Error, CustomStringConvertible {
    var description: String
}

/// Throws a `ValidationError` naming the first flag whose value is not a positive integer.
func requirePositive(_ flags: KeyValuePairs<String, Int>) throws {
    for (flag, value) in flags where value <= 0 {
        throw ValidationError("\(flag) needs a positive integer, got \(value)")
    }
}

/// Throws a `ValidationError` when `name` is not a latency profile of `LatencyInjectingStore`.
func requireLatencyProfile(_ name: String) throws {
    guard LatencyInjectingStore.Profile(named: name) != nil else {
        throw ValidationError("--latency takes s3-standard, s3-express or none, got '\(name)'")
    }
}
