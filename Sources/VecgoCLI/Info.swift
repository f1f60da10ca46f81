// `vecgo info`: the latest version, dimension, metric, key-index layers and segments.
import ArgumentParser
import SegmentFormat
import Stores
import Vecgo

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the latest version, dimension, metric, key-index layers and segments.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingFailure {
            let store = try store.open()
            let db = try await Vecgo.open(.remote(store), .readOnly)
            let manifests = try await store.list(prefix: "MANIFEST-")
            print("version \(await db.version) (\(manifests.count) versions kept), dimension \(db.dimension), metric \(db.metric)")
            if let latest = manifests.last {
                let m = try Manifest.decode(try await store.read(latest.name), object: latest.name)
                let stored = m.segments.reduce(0) { $0 + $1.rowCount }
                if m.segments.allSatisfy({ $0.deadRows != nil }) {
                    print("\(stored - m.segments.reduce(0) { $0 + $1.deadRows! }) live rows (\(stored) rows in segments)")
                } else {
                    print("\(stored) rows in segments (live rows not recorded by this manifest's writer)")
                }
                let layers = m.pkIndexLayers
                if layers.count > 1 {
                    print("pk-index in \(layers.count) layers, \(layers.reduce(0) { $0 + $1.size }) bytes (a full index, then deltas, oldest first):")
                    for (i, l) in layers.enumerated() { print("  \(i == 0 ? "full " : "delta") \(l.name) (\(l.size) bytes)") }
                } else {
                    print("pk-index \(m.pkIndexObject) (\(m.pkIndexSize) bytes)")
                }
                for s in m.segments { print("segment \(s.name): \(s.rowCount) rows, \(s.size) bytes, ids \(s.minID)...\(s.maxID)") }
            }
        }
    }
}
