// VecgoStressWriter: the agent process of the crash tests and the torture suite (not a product).
//
//   VecgoStressWriter <store-url> --endpoint URL [--role writer] --writer W --commits C --rows R
//                     [--dim D] [--timed] [--max-commit-age S] [--stop-file F]
//   VecgoStressWriter <store-url> --endpoint URL --role reader --reference-endpoint URL --cache DIR
//                     [--dim D] [--k K] [--seed S] [--disk-cache-size N] [--block-cache-size N]
//                     [--decoded-cache-size N] [--stop-file F] [--duration S]
//   VecgoStressWriter <store-url> --endpoint URL --role maintainer [--interval S] [--retain N]
//                     [--grace S] [--max-commit-age S] [--stop-file F] [--duration S]
//   VecgoStressWriter <store-url> --endpoint URL --role check --acks FILE --rows R [--dim D]
//
// writer: commits C batches of R rows under keys W<<40 | c<<20 | i, each row's vector a function
// of its key and its metadata {"w": W, "c": c}, and prints "ACK <version> <W> <c>" (flushed)
// after each commit returns (with --timed, a fifth field: the commit's duration in ms): what is
// printed was acknowledged and must survive a kill. See Reader.swift, Maintainer.swift and
// Checker.swift for the other roles.
import Foundation
import Stores
import Vecgo

let usage = "usage: VecgoStressWriter <store-url> --endpoint URL [--role writer|reader|maintainer|check] ... (see Sources/VecgoStressWriter/main.swift)"

/// The writer role.
func runWriter() async throws {
    guard let w = argument("--writer").flatMap(UInt64.init), let commits = argument("--commits").flatMap(Int.init),
          let rows = argument("--rows").flatMap(Int.init) else {
        throw StoreError(.invalidArgument, "usage: VecgoStressWriter <store-url> --endpoint URL --writer W --commits C --rows R [--dim D]")
    }
    let dim: Int = try number("--dim", 8)
    let timed = flag("--timed"), stopFile = argument("--stop-file")
    var options: [OpenOption] = [.create(dimension: dim, metric: .l2), .commitAttempts(50)]
    if let age = argument("--max-commit-age") {
        guard let t = Double(age) else { throw StoreError(.invalidArgument, "--max-commit-age needs seconds, got '\(age)'") }
        options.append(.maxCommitObjectAge(t))
    }
    let db = try await Vecgo.open(.remote(try store(at: argument("--endpoint"))), options: options)
    for c in 0..<commits where !stopRequested(stopFile) {
        for i in 0..<rows {
            let key = batchKey(writer: w, batch: c, row: i)
            try await db.upsert(id: key, vector(forKey: key, dimension: dim),
                                metadata: ["w": .int(Int64(w)), "c": .int(Int64(c))])
        }
        let started = ContinuousClock.now
        let v = try await db.commit()
        let ms = (ContinuousClock.now - started) / .milliseconds(1)
        say(timed ? String(format: "ACK %llu %llu %d %.1f", v, w, c, ms) : "ACK \(v) \(w) \(c)")
    }
    try await db.close()
}

do {
    guard CommandLine.arguments.count > 1, !CommandLine.arguments[1].hasPrefix("-") else {
        throw StoreError(.invalidArgument, usage)
    }
    switch argument("--role") ?? "writer" {
    case "writer": try await runWriter()
    case "reader": try await runReader()
    case "maintainer": try await runMaintainer()
    case "check": if try await !runCheck() { exit(3) }
    case let role: throw StoreError(.invalidArgument, "unknown --role '\(role)': writer, reader, maintainer or check")
    }
} catch {
    FileHandle.standardError.write("VecgoStressWriter: \(error)\n".data(using: .utf8)!)
    say("FAILED \(errorCode(error))")
    exit(1)
}
