// `vecgo compact`: merges small segments and drops superseded rows (writes a version).
import ArgumentParser
import Vecgo

struct Compact: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge small segments and drop superseded rows into a new version (writes).")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingFailure {
            let db = try await Vecgo.open(.remote(try store.open()))
            let r = try await db.compact()
            try await db.close()
            if let v = r.version {
                print("compacted into version \(v): \(r.segmentsMerged) segments merged, \(r.rowsKept) rows kept, \(r.rowsDropped) dropped")
            } else {
                print("nothing to compact")
            }
        }
    }
}
