// `vecgo search`: the k nearest rows to a vector given on the command line.
import ArgumentParser
import Foundation
import Vecgo

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the k nearest rows to a vector: one line per hit, id<TAB>distance.")

    @OptionGroup var store: StoreOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("The query, comma-separated numbers.", valueName: "v1,v2,..."),
            transform: parseVector)
    var vector: [Float]

    @Option(name: .customShort("k"), help: "How many hits (1...10000).")
    var k = 10

    func validate() throws {
        guard (1...10_000).contains(k) else { throw ValidationError("-k must be in 1...10000, got \(k)") }
    }

    func run() async throws {
        try await reportingFailure {
            let db = try await Vecgo.open(.remote(try store.open()), .readOnly)
            for hit in try await db.search(vector, k: k) { print("\(hit.id)\t\(hit.distance)") }
        }
    }
}

/// Parses `--vector`'s comma-separated numbers; the parser names the flag in its error.
func parseVector(_ text: String) throws -> [Float] {
    let values = try text.split(separator: ",", omittingEmptySubsequences: false).map { part -> Float in
        let trimmed = part.trimmingCharacters(in: .whitespaces)
        guard let f = Float(trimmed), f.isFinite else { throw ValidationError("'\(trimmed)' is not a finite number") }
        return f
    }
    guard !values.isEmpty else { throw ValidationError("the vector is empty") }
    return values
}
