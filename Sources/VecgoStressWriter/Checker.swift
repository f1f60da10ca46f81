// The checker role: reads the store fault-free (the endpoint given is the store itself) and
// checks the torture suite's invariants against the writers' acknowledgements.
//
// --acks FILE holds one "<version> <writer> <batch>" line per ACK any writer printed. Checks:
// every row of the newest version is one of a batch's R rows, with its vector and metadata, and
// no key appears twice; every batch is whole or absent, in the newest version and in every
// version still kept; every acknowledged batch is whole in the newest version and in the version
// its commit returned (when kept); no version was acknowledged twice; the kept versions are
// contiguous. Prints "VIOLATION <what>" per failure and one "CHECK <json>" summary line; the
// process exits 3 when anything failed.
import Foundation
import Stores
import Vecgo

/// The rows of one version by key, read with filtered exhaustive searches over writer ids and
/// batch numbers (a range is split until each search returns fewer than its 10 000 limit).
func allRows(_ db: Vecgo, dimension: Int, writers: ClosedRange<Int64>, batches: ClosedRange<Int64> = 0...0xFFFFF)
    async throws -> (rows: [UInt64: SearchResult], duplicates: Int) {
    let limit = 10_000
    if writers.lowerBound == 0 && batches == 0...0xFFFFF {
        // Everything at once when it fits in one answer.
        let all = try await db.search([Float](repeating: 0, count: dimension), k: limit, include: [.vector, .metadata])
        if all.count < limit {
            var rows: [UInt64: SearchResult] = [:], duplicates = 0
            for r in all {
                if rows[r.id] != nil { duplicates += 1 }
                rows[r.id] = r
            }
            return (rows, duplicates)
        }
    }
    let filter: Filter = .and([.range("w", min: .int(writers.lowerBound), max: .int(writers.upperBound)),
                               .range("c", min: .int(batches.lowerBound), max: .int(batches.upperBound))])
    let found = try await db.search([Float](repeating: 0, count: dimension), k: limit, filter: filter, include: [.vector, .metadata])
    if found.count == limit {
        let halves: [(ClosedRange<Int64>, ClosedRange<Int64>)]
        if writers.count > 1 {
            let mid = writers.lowerBound + (writers.upperBound - writers.lowerBound) / 2
            halves = [(writers.lowerBound...mid, batches), ((mid + 1)...writers.upperBound, batches)]
        } else if batches.count > 1 {
            let mid = batches.lowerBound + (batches.upperBound - batches.lowerBound) / 2
            halves = [(writers, batches.lowerBound...mid), (writers, (mid + 1)...batches.upperBound)]
        } else {
            throw StoreError(.invalidArgument, "batch \(batches.lowerBound) of writer \(writers.lowerBound) has \(limit) rows or more")
        }
        var rows: [UInt64: SearchResult] = [:], duplicates = 0
        for (w, c) in halves {
            let part = try await allRows(db, dimension: dimension, writers: w, batches: c)
            duplicates += part.duplicates + part.rows.keys.filter { rows[$0] != nil }.count
            rows.merge(part.rows) { a, _ in a }
        }
        return (rows, duplicates)
    }
    var rows: [UInt64: SearchResult] = [:], duplicates = 0
    for r in found {
        if rows[r.id] != nil { duplicates += 1 }
        rows[r.id] = r
    }
    return (rows, duplicates)
}

struct BatchID: Hashable, Comparable, CustomStringConvertible {
    var writer: UInt64, batch: Int
    static func < (a: Self, b: Self) -> Bool { (a.writer, a.batch) < (b.writer, b.batch) }
    var description: String { "writer \(writer) batch \(batch)" }
}

func runCheck() async throws -> Bool {
    guard let acksFile = argument("--acks"), let rowsPerBatch = argument("--rows").flatMap(Int.init) else {
        throw StoreError(.invalidArgument, "the checker needs --acks FILE and --rows R")
    }
    let dim: Int = try number("--dim", 8), maxVersions: Int = try number("--max-versions", Int.max)
    // Each handle keeps what it read in RAM (read fault-free from the store, once).
    let cache: OpenOption = .blockCacheSize(try number("--block-cache-size", 64 << 20))
    let acks: [(version: UInt64, batch: BatchID)] = try String(contentsOfFile: acksFile, encoding: .utf8)
        .split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 3, let v = UInt64(f[0]), let w = UInt64(f[1]), let c = Int(f[2]) else { return nil }
            return (v, BatchID(writer: w, batch: c))
        }
    let direct = try store(at: argument("--endpoint"))
    var violations: [String] = []
    func violation(_ text: String) {
        violations.append(text)
        say("VIOLATION \(text)")
    }
    let maxWriter = Int64(acks.map(\.batch.writer).max() ?? 0) + 1_000  // restarted writers that never acknowledged

    /// Whole-or-absent batches of one version; returns the complete ones.
    func batches(_ db: Vecgo, label: String) async throws -> Set<BatchID> {
        let (rows, duplicates) = try await allRows(db, dimension: dim, writers: 0...maxWriter)
        if duplicates > 0 { violation("\(label): \(duplicates) keys returned twice") }
        var counts: [BatchID: Int] = [:]
        var wrong = 0
        for (key, r) in rows {
            let id = BatchID(writer: key >> 40, batch: Int((key >> 20) & 0xFFFFF))
            counts[id, default: 0] += 1
            let meta: Metadata = ["w": .int(Int64(id.writer)), "c": .int(Int64(id.batch))]
            if r.vector != vector(forKey: key, dimension: dim) || r.metadata != meta || Int(key & 0xFFFFF) >= rowsPerBatch {
                wrong += 1
                if wrong <= 5 { violation("\(label): key \(key) (\(id)) has a wrong vector, metadata or row number") }
            }
        }
        for (id, n) in counts.sorted(by: { $0.key < $1.key }) where n != rowsPerBatch {
            violation("\(label): \(id) is partial, \(n) of \(rowsPerBatch) rows")
        }
        return Set(counts.filter { $0.value == rowsPerBatch }.keys)
    }

    let versions = try await Vecgo.versions(.remote(direct)).map(\.version)
    guard let newest = versions.last else {
        violation("no version in the store")
        say("CHECK {\"ok\": false}")
        return false
    }
    if versions != Array(versions.first!...newest) {
        violation("versions kept are not contiguous: \(versions.count) versions from \(versions.first!) to \(newest)")
    }
    var versionsAcked: [UInt64: BatchID] = [:]
    for a in acks {
        if let other = versionsAcked[a.version] { violation("version \(a.version) acknowledged to \(other) and to \(a.batch)") }
        versionsAcked[a.version] = a.batch
        if a.version > newest { violation("\(a.batch) acknowledged as version \(a.version), newer than the newest \(newest)") }
    }
    let latest = try await Vecgo.open(.remote(direct), .readOnly, cache)
    let present = try await batches(latest, label: "version \(newest)")
    try await latest.close()
    for a in acks where !present.contains(a.batch) {
        violation("acknowledged \(a.batch) (version \(a.version)) is not whole in the newest version \(newest)")
    }
    // Every kept version: whole batches only, and the batch its commit acknowledged is in it.
    var checked = 0
    for v in versions.dropLast().suffix(maxVersions - 1) {
        let db: Vecgo
        do {
            db = try await Vecgo.open(.remote(direct), .atVersion(v), cache)
        } catch let e as VecgoError where e.code == .notFound && v == versions.first {
            continue  // vacuumed since the listing
        }
        let whole = try await batches(db, label: "version \(v)")
        try await db.close()
        checked += 1
        if let b = versionsAcked[v], !whole.contains(b) { violation("version \(v) was acknowledged for \(b), which it does not hold whole") }
    }
    let acked = Set(acks.map(\.batch))
    let summary: [String: Any] = [
        "ok": violations.isEmpty, "newest_version": newest, "oldest_version": versions.first!, "versions_checked": checked + 1,
        "batches_present": present.count, "batches_acknowledged": acked.count,
        "unacknowledged_batches_present": present.subtracting(acked).count, "violations": violations.count,
    ]
    say("CHECK " + String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
    return violations.isEmpty
}
