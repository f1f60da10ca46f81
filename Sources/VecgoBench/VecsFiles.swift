// Reading .fvecs / .ivecs files for the ANN benchmarks.
import Foundation

/// Reads the standard `.fvecs` / `.ivecs` files (each row: little-endian i32 count, then count values).
enum VecsFile {
    static func read<T>(_ path: String, as: T.Type) throws -> (rows: [[T]], dimension: Int) where T: BitwiseCopyable {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var rows: [[T]] = []
        var offset = 0
        var dimension = 0
        try data.withUnsafeBytes { raw in
            while offset < raw.count {
                guard offset + 4 <= raw.count else { throw BenchError(description: "\(path): truncated at byte \(offset)") }
                let d = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                guard d > 0, offset + 4 + d * 4 <= raw.count else {
                    throw BenchError(description: "\(path): bad row of \(d) values at byte \(offset)")
                }
                if dimension == 0 { dimension = d }
                guard d == dimension else { throw BenchError(description: "\(path): row of \(d) values, expected \(dimension)") }
                rows.append((0..<d).map { raw.loadUnaligned(fromByteOffset: offset + 4 + $0 * 4, as: T.self) })
                offset += 4 + d * 4
            }
        }
        return (rows, dimension)
    }
}
