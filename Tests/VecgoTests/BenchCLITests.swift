// The argument parsing of the `vecgo-bench` tool, run as a user would: the built binary's help,
// usage errors and a tiny commit-stall run (no other benchmark runs here).
import Foundation
import Testing

@Suite struct BenchCLITests {
    static func bench(_ args: [String]) async throws -> (Int32, String) {
        #expect(FileManager.default.isExecutableFile(atPath: VerifyTests.tool("vecgo-bench").path),
                "build vecgo-bench first (swift build --build-tests builds it)")
        return try await VerifyTests.run(args, tool: "vecgo-bench")
    }

    @Test(arguments: [("tiers", "--latency"), ("ann", "--filter-selectivity"), ("commits", "--express-endpoint"),
                      ("fairness", "--writers"), ("scale", "--max-segment-bytes"), ("commit-stall", "--base-rows")])
    func everySubcommandHasHelp(command: String, flag: String) async throws {
        let (status, out) = try await Self.bench([command, "--help"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("USAGE: vecgo-bench \(command)") && out.contains(flag), "\(out)")
    }

    @Test func theRootListsEverySubcommandAndCompletes() async throws {
        let (status, out) = try await Self.bench(["--help"])
        #expect(status == 0)
        for sub in ["tiers", "ann", "commits", "fairness", "scale", "commit-stall"] { #expect(out.contains("  \(sub) "), "\(sub): \(out)") }
        let (completionStatus, script) = try await Self.bench(["--generate-completion-script", "bash"])
        #expect(completionStatus == 0)
        #expect(script.contains("commit-stall") && script.contains("--base-rows"), "\(script.prefix(500))")
    }

    @Test func badValuesNameTheirFlag() async throws {
        for (args, flag) in [(["tiers", "--rows", "abc"], "--rows"),
                             (["tiers", "--rows", "0"], "--rows"),
                             (["tiers", "--latency", "s3-glacier"], "--latency"),
                             (["scale", "--dim", "-3"], "--dim"),
                             (["scale", "--scan", "pq"], "--scan"),
                             (["scale", "--base", "b.fvecs"], "--queries-file"),
                             (["ann", "--base", "b", "--queries", "q", "--index", "lsh"], "--index"),
                             (["ann", "--base", "b", "--queries", "q", "--metric", "manhattan"], "--metric"),
                             (["ann", "--base", "b", "--queries", "q", "--filter-selectivity", "0.5,2"], "--filter-selectivity"),
                             (["commits", "--rows", "10"], "--endpoint"),
                             (["fairness", "--endpoint", "http://x", "--writers", "0"], "--writers"),
                             (["commit-stall", "--rows", "0"], "--rows"),
                             (["commit-stall", "--base-rows", "many"], "--base-rows"),
                             (["commit-stall", "--show-slow", "0"], "--show-slow"),
                             (["scale", "--small-commits", "0"], "--small-commits"),
                             (["tiers", "--frobnicate"], "--frobnicate")] {
            let (status, out) = try await Self.bench(args)
            #expect(status == 64, "\(args): \(out)")
            #expect(out.contains(flag), "\(args) should name \(flag): \(out)")
        }
    }

    /// A tiny commit-stall run: its JSON has the four phases, searches during the commit, and a ratio.
    @Test func commitStallReportsEveryPhase() async throws {
        let (status, out) = try await Self.bench(["commit-stall", "--rows", "300", "--base-rows", "200", "--dim", "8",
                                                  "--searches", "20", "--json"])
        #expect(status == 0, "\(out)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        let results = try #require(report["results"] as? [[String: Any]])
        #expect(results.count == 4)
        #expect(results.allSatisfy { ($0["searches"] as? Int ?? 0) >= 1 }, "\(results)")
        #expect(results[0]["searches"] as? Int == 20)
        #expect((report["p99_ratio"] as? Double ?? 0) > 0 && (report["commit_s"] as? Double ?? 0) > 0, "\(report)")
        #expect(report["rows"] as? Int == 300 && report["base_rows"] as? Int == 200)
    }
}
