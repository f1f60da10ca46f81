// `vecgo versions`: every kept version with its commit time, segments, rows and writer epoch.
import ArgumentParser
import Foundation
import Vecgo

struct Versions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the kept versions: commit time, segments, rows, writer epoch.")

    @OptionGroup var store: StoreOptions

    @Flag(help: "Print the list as JSON.")
    var json = false

    func run() async throws {
        try await reportingFailure {
            let all = try await Vecgo.versions(.remote(try store.open()))
            if json {
                struct Row: Encodable { var version: UInt64; var commitTime: String; var segments: Int; var rows: UInt64; var writerEpoch: UInt64 }
                print(try prettyJSON(all.map {
                    Row(version: $0.version, commitTime: ISO8601DateFormatter().string(from: $0.commitTime), segments: $0.segments,
                        rows: $0.rows, writerEpoch: $0.writerEpoch)
                }))
                return
            }
            print("version\tcommitted\tsegments\trows\tepoch")
            for v in all { print("\(v.version)\t\(ISO8601DateFormatter().string(from: v.commitTime))\t\(v.segments)\t\(v.rows)\t\(v.writerEpoch)") }
        }
    }
}
