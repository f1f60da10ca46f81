// The reader role: a read-only handle through the (faulty) store with a disk cache, refreshed in
// a loop, each search answered again by a fault-free reference handle at the same version.
//
// Prints per search "QUERY <version> <rows returned>", "MISMATCH <version> <what>" when the two
// answers differ, "SKIP <version> vacuumed" when the reference can no longer open that version,
// "ERROR <code>" for a failure it cannot avoid under faults (it goes on), and at the end
// "DONE queries=Q mismatches=M errors=E skips=S".
import Foundation
import Stores
import Vecgo
import _VecgoTestSupport

/// Whether two answers are the same: ids, distances, vectors and metadata, in order.
func sameAnswer(_ a: [SearchResult], _ b: [SearchResult]) -> String? {
    guard a.count == b.count else { return "\(a.count) results, reference \(b.count)" }
    for (i, (x, y)) in zip(a, b).enumerated() where x != y {
        return "result \(i): id \(x.id) distance \(x.distance), reference id \(y.id) distance \(y.distance)"
            + (x.id == y.id ? (x.vector != y.vector ? " (vectors differ)" : " (metadata differ)") : "")
    }
    return nil
}

func runReader() async throws {
    guard let reference = argument("--reference-endpoint"), let cache = argument("--cache") else {
        throw StoreError(.invalidArgument, "the reader needs --reference-endpoint URL (fault-free) and --cache DIR")
    }
    let dim: Int = try number("--dim", 8), k: Int = try number("--k", 10), seed: UInt64 = try number("--seed", 1)
    let duration: Double = try number("--duration", 1e9)
    let stopFile = argument("--stop-file")
    let options: [OpenOption] = [.readOnly, .cacheDirectory(cache),
                                 .diskCacheSize(try number("--disk-cache-size", 64 << 20)),
                                 .blockCacheSize(try number("--block-cache-size", 16 << 20)),
                                 .decodedCacheSize(try number("--decoded-cache-size", 64 << 20))]
    let faulty = try store(at: argument("--endpoint")), direct = try store(at: reference)
    let deadline = ContinuousClock.now + .seconds(duration)
    func done() -> Bool { stopRequested(stopFile) || ContinuousClock.now >= deadline }

    var rng = SeededRNG(seed: seed)
    var queries = 0, mismatches = 0, errors = 0, skips = 0
    var reader: Vecgo?
    var ref: (version: UInt64, db: Vecgo)?
    while !done() {
        do {
            // The database may not exist yet, and an open may fail under faults: open again.
            if reader == nil { reader = try await Vecgo.open(.remote(faulty), options: options) }
            guard let db = reader else { continue }
            try await db.refresh()
            let version = await db.version
            let query = (0..<dim).map { _ in Float.random(in: 0..<1, using: &rng) }
            let answer = try await db.search(query, k: k, include: [.vector, .metadata])
            queries += 1
            if ref?.version != version {
                try await ref?.db.close()
                ref = nil
                do {
                    ref = (version, try await Vecgo.open(.remote(direct), .atVersion(version), .blockCacheSize(0), .decodedCacheSize(0)))
                } catch let e as VecgoError where e.code == .notFound {
                    skips += 1
                    say("SKIP \(version) vacuumed")
                    continue
                }
            }
            guard let expected = try await ref?.db.search(query, k: k, include: [.vector, .metadata]) else { continue }
            if let difference = sameAnswer(answer, expected) {
                mismatches += 1
                say("MISMATCH \(version) \(difference)")
            } else {
                say("QUERY \(version) \(answer.count)")
            }
        } catch {
            errors += 1
            say("ERROR \(errorCode(error))")
            FileHandle.standardError.write("reader: \(error)\n".data(using: .utf8)!)
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
    try await ref?.db.close()
    try await reader?.close()
    say("DONE queries=\(queries) mismatches=\(mismatches) errors=\(errors) skips=\(skips)")
}
