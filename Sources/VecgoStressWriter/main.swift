// VecgoStressWriter: a writer process for the integration tests (not a product).
//
//   VecgoStressWriter <store-url> --endpoint URL --writer W --commits C --rows R [--dim D]
//
// Commits C batches of R rows under keys W<<40 | c<<20 | i, each row's vector a function of
// its key and its metadata {"w": W, "c": c}, and prints "ACK <version> <W> <c>" (flushed)
// after each commit returns: what is printed was acknowledged and must survive a kill.
import Foundation
import Stores
import Vecgo

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

/// The vector of a key (shared with the tests, which recompute it).
func vector(forKey key: UInt64, dimension: Int) -> [Float] {
    (0..<dimension).map { j in Float((key &* 2_654_435_761 &+ UInt64(j) &* 40_503) % 10_007) / 10_007 }
}

do {
    guard CommandLine.arguments.count > 1, let w = argument("--writer").flatMap(UInt64.init),
          let commits = argument("--commits").flatMap(Int.init), let rows = argument("--rows").flatMap(Int.init) else {
        throw StoreError(.invalidArgument, "usage: VecgoStressWriter <store-url> --endpoint URL --writer W --commits C --rows R [--dim D]")
    }
    let dim = argument("--dim").flatMap(Int.init) ?? 8
    let store = try openStore(url: CommandLine.arguments[1], endpoint: argument("--endpoint"), region: nil)
    let db = try await Vecgo.open(.remote(store), .create(dimension: dim, metric: .l2), .commitAttempts(50))
    for c in 0..<commits {
        for i in 0..<rows {
            let key = w << 40 | UInt64(c) << 20 | UInt64(i)
            try await db.upsert(id: key, vector(forKey: key, dimension: dim),
                                metadata: ["w": .int(Int64(w)), "c": .int(Int64(c))])
        }
        let v = try await db.commit()
        FileHandle.standardOutput.write("ACK \(v) \(w) \(c)\n".data(using: .utf8)!)  // unbuffered
    }
    try await db.close()
} catch {
    FileHandle.standardError.write("VecgoStressWriter: \(error)\n".data(using: .utf8)!)
    exit(1)
}
