// `vecgo vacuum`: deletes old versions and unreferenced objects past a grace period.
import ArgumentParser
import Vecgo

struct Vacuum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete versions older than the N newest and unreferenced objects older than the grace period (deletes).",
        discussion: "The grace period must be at least the writers' maxCommitObjectAge (--max-commit-age), or vacuum refuses.")

    @OptionGroup var store: StoreOptions

    @Option(help: "Keep this many newest versions (at least 1).")
    var retain = 10

    @Option(help: ArgumentHelp("Keep unreferenced objects younger than this many seconds.", valueName: "seconds"))
    var grace = 3600.0

    @Option(name: .customLong("max-commit-age"),
            help: ArgumentHelp("The writers' maxCommitObjectAge in seconds.", valueName: "seconds"))
    var maxCommitAge = 600.0

    func validate() throws {
        guard retain >= 1 else { throw ValidationError("--retain needs a whole number of at least 1, got \(retain)") }
        guard grace >= 0, grace.isFinite else { throw ValidationError("--grace needs a number of seconds, got \(grace)") }
        guard maxCommitAge > 0, maxCommitAge.isFinite else {
            throw ValidationError("--max-commit-age needs a positive number of seconds, got \(maxCommitAge)")
        }
    }

    func run() async throws {
        try await reportingFailure {
            // The grace period must cover the writers' maxCommitObjectAge, which --max-commit-age states.
            let db = try await Vecgo.open(.remote(try store.open()), .maxCommitObjectAge(maxCommitAge))
            let r = try await db.vacuum(retainVersions: retain, gracePeriod: grace)
            try await db.close()
            print("kept versions from \(r.oldestRetainedVersion); deleted \(r.manifestsDeleted) manifests and \(r.objectsDeleted) objects (\(r.bytesDeleted) bytes); \(r.keptInGracePeriod) kept for the grace period")
        }
    }
}
