// `vecgo verify`: checks every manifest, segment and key index; exit status 1 on damage.
import ArgumentParser
import Vecgo

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every manifest, segment and key index (exit status 1 when something is damaged).")

    @OptionGroup var store: StoreOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        var ok = true
        try await reportingFailure {
            let report = try await Vecgo.verify(try store.open())
            if json {
                print(try prettyJSON(report))
            } else {
                print("checked \(report.manifests) manifests, \(report.segments) segments, \(report.pkIndexes) pk-indexes: "
                      + (report.ok ? "all good" : "\(report.problems.count) problems"))
                for p in report.problems { print("DAMAGED \(p.object): \(p.problem)") }
            }
            ok = report.ok
        }
        if !ok { throw ExitCode(1) }
    }
}
