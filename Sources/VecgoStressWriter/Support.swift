// What every role of the agent shares: argument lookup, the key and vector of a batch row,
// line output (unbuffered, so a killed process has printed everything it acknowledged),
// error codes for ERROR lines, and the stop file.
import Foundation
import Stores
import Vecgo

/// The value after `name` on the command line, if any.
func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

/// Whether the flag `name` is on the command line.
func flag(_ name: String) -> Bool { CommandLine.arguments.contains(name) }

/// The value after `name` as a number, `fallback` when absent; an unparsable value is an error.
func number<T: LosslessStringConvertible>(_ name: String, _ fallback: T) throws -> T {
    guard let text = argument(name) else { return fallback }
    guard let v = T(text) else { throw StoreError(.invalidArgument, "\(name) needs a number, got '\(text)'") }
    return v
}

/// The vector of a key (shared with the tests, which recompute it).
func vector(forKey key: UInt64, dimension: Int) -> [Float] {
    (0..<dimension).map { j in Float((key &* 2_654_435_761 &+ UInt64(j) &* 40_503) % 10_007) / 10_007 }
}

/// The key of row `i` of batch `c` of writer `w`.
func batchKey(writer w: UInt64, batch c: Int, row i: Int) -> UInt64 { w << 40 | UInt64(c) << 20 | UInt64(i) }

/// Writes one line to standard output at once (no buffering).
func say(_ line: String) {
    FileHandle.standardOutput.write((line + "\n").data(using: .utf8)!)
}

/// The short code an `ERROR` line names: the `VecgoError` code, else the error's type.
func errorCode(_ error: any Error) -> String {
    if let e = error as? VecgoError { return e.code.description }
    if let e = error as? StoreError { return "store-\(e.code)" }
    return String(describing: type(of: error))
}

/// Whether the orchestrator asked this process to finish (the stop file exists).
func stopRequested(_ path: String?) -> Bool {
    guard let path else { return false }
    return FileManager.default.fileExists(atPath: path)
}

/// Opens the store of the command line's URL at `endpoint`.
func store(at endpoint: String?) throws -> any BlobStore {
    try openStore(url: CommandLine.arguments[1], endpoint: endpoint, region: nil)
}
