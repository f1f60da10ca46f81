// Streaming readers of vector files for `vecgo import`: .fvecs, .bvecs, .npy (float32 and
// float16, 2-D, C order) and JSON Lines, read in chunks so no file is ever held whole.
import Foundation
import Vecgo

/// One row read from an input file.
struct InputRow {
    /// The row's key: its "id", or the id offset plus its row number across the import.
    var id: UInt64?
    /// A JSON Lines row's string key (then `id` is nil).
    var key: String?
    var vector: [Float]
    var metadata: Metadata = [:]
    var payload: [UInt8]? = nil
}

/// The input formats, chosen by extension or `--format`.
enum InputFormat: String, CaseIterable {
    case fvecs, bvecs, npy, jsonl

    /// The format a file name's extension names (`.json`/`.ndjson` count as JSON Lines).
    init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "fvecs": self = .fvecs
        case "bvecs": self = .bvecs
        case "npy": self = .npy
        case "jsonl", "ndjson", "json": self = .jsonl
        default: return nil
        }
    }
}

/// A file read in chunks of 4 MiB: the readers below take bytes from its window.
final class ChunkedFile {
    let path: String
    let size: Int
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes of the file consumed so far.
    private(set) var consumed = 0
    private static let chunk = 4 << 20

    init(_ path: String) throws {
        self.path = path
        guard let h = FileHandle(forReadingAtPath: path) else { throw CLIError("\(path): cannot open the file") }
        handle = h
        size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    deinit { try? handle.close() }

    /// Makes at least `n` bytes available unless the file ends first; returns how many are.
    private func fill(_ n: Int) throws -> Int {
        while buffer.count - start < n {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            guard let more = try handle.read(upToCount: max(Self.chunk, n)), !more.isEmpty else { break }
            buffer.append(contentsOf: more)
        }
        return buffer.count - start
    }

    /// Whether the file has no more bytes.
    func atEnd() throws -> Bool { try fill(1) == 0 }

    /// Hands `body` the next `n` bytes; nil when the file ends first (`short` says how many were left).
    func take<T>(_ n: Int, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        guard try fill(n) >= n else { return nil }
        defer { start += n; consumed += n }
        return try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<start + n])) }
    }

    /// The next line without its newline (and carriage return); nil at the end of the file.
    func line() throws -> [UInt8]? {
        var scanned = 0
        while true {
            let available = buffer.count - start
            if let nl = buffer[(start + scanned)..<buffer.count].firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[start..<nl])
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                consumed += nl + 1 - start
                start = nl + 1
                return line
            }
            scanned = available
            if try fill(available + 1) == available {  // the file ended
                guard available > 0 else { return nil }
                let line = Array(buffer[start..<buffer.count])
                consumed += available
                start = buffer.count
                return line
            }
        }
    }
}

/// Reads rows from one file; `position` names where the last row came from for error messages.
protocol RowReader: AnyObject {
    /// The next row, or nil at the end of the file.
    func next() throws -> InputRow?
    /// "row 12" or "line 12": where the last row returned (or the failure) is.
    var position: String { get }
    /// Bytes of the file read so far.
    var bytesRead: Int { get }
}

/// Opens the reader of `format` for `path`; vecs and npy rows get ids from `nextID`.
func openReader(_ path: String, format: InputFormat) throws -> any RowReader {
    let file = try ChunkedFile(path)
    switch format {
    case .fvecs: return VecsReader(file, bytesPerValue: 4)
    case .bvecs: return VecsReader(file, bytesPerValue: 1)
    case .npy: return try NpyReader(file)
    case .jsonl: return JSONLinesReader(file)
    }
}

/// `.fvecs` (float32) and `.bvecs` (uint8) rows: a little-endian Int32 count, then the values.
final class VecsReader: RowReader {
    private let file: ChunkedFile
    private let bytesPerValue: Int
    private var dimension = 0
    private var row = 0
    var position: String { "row \(row)" }
    var bytesRead: Int { file.consumed }

    init(_ file: ChunkedFile, bytesPerValue: Int) {
        self.file = file
        self.bytesPerValue = bytesPerValue
    }

    func next() throws -> InputRow? {
        guard try !file.atEnd() else { return nil }
        row += 1
        guard let d = try file.take(4, { Int(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) }) else {
            throw CLIError("the file ends inside the row's count")
        }
        guard d > 0, d <= 1 << 16 else { throw CLIError("the row's count is \(d); expected 1...65536") }
        if dimension == 0 { dimension = d }
        guard d == dimension else { throw CLIError("the row has \(d) values; earlier rows have \(dimension)") }
        let bpv = bytesPerValue
        guard let vector = try file.take(d * bpv, { raw -> [Float] in
            bpv == 4 ? (0..<d).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                     : raw.map { Float($0) }
        }) else {
            throw CLIError("the file ends inside the row (\(d) values expected)")
        }
        return InputRow(vector: vector)
    }
}

/// NumPy `.npy` (format 1.0–3.0): a 2-D, C-order array of little-endian float32 (`<f4`) or
/// float16 (`<f2`), read row by row after parsing the header's dictionary.
final class NpyReader: RowReader {
    private let file: ChunkedFile
    let rows: Int
    let dimension: Int
    private let half: Bool
    private var row = 0
    var position: String { "row \(row)" }
    var bytesRead: Int { file.consumed }

    init(_ file: ChunkedFile) throws {
        self.file = file
        let head: (magic: Bool, major: UInt8)? = try file.take(8) { raw in
            (Array(raw[0..<6]) == [0x93] + Array("NUMPY".utf8), raw[6])
        }
        guard let head, head.magic else { throw CLIError("not a .npy file (no \\x93NUMPY magic)") }
        let lengthBytes = head.major == 1 ? 2 : 4
        guard let headerLength = try file.take(lengthBytes, { raw in
            lengthBytes == 2 ? Int(UInt16(littleEndian: raw.loadUnaligned(as: UInt16.self)))
                             : Int(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
        }), headerLength < 1 << 20, let header = try file.take(headerLength, { String(decoding: $0, as: UTF8.self) }) else {
            throw CLIError("the .npy header is truncated")
        }
        let (descr, fortran, shape) = try Self.parse(header)
        guard descr == "<f4" || descr == "<f2" || (descr == "|f2") else {
            throw CLIError("the .npy array holds '\(descr)'; import reads little-endian float32 ('<f4') or float16 ('<f2')")
        }
        guard !fortran else { throw CLIError("the .npy array is in Fortran order; save it in C order (numpy.ascontiguousarray)") }
        guard shape.count == 2, shape[1] > 0 else {
            throw CLIError("the .npy array has shape \(shape); import reads 2-D arrays (rows, dimension)")
        }
        rows = shape[0]
        dimension = shape[1]
        half = descr.hasSuffix("f2")
    }

    /// The header dictionary's 'descr', 'fortran_order' and 'shape'.
    static func parse(_ header: String) throws -> (String, Bool, [Int]) {
        func value(_ key: String) throws -> Substring {
            guard let r = header.range(of: "'\(key)':") else { throw CLIError("the .npy header has no '\(key)': \(header)") }
            return header[r.upperBound...].drop { $0 == " " }
        }
        let d = try value("descr")
        guard d.first == "'", let end = d.dropFirst().firstIndex(of: "'") else { throw CLIError("the .npy header's 'descr' is not a string: \(header)") }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        let fortran = try value("fortran_order").hasPrefix("True")
        let s = try value("shape")
        guard s.first == "(", let close = s.firstIndex(of: ")") else { throw CLIError("the .npy header's 'shape' is not a tuple: \(header)") }
        let shape = try s[s.index(after: s.startIndex)..<close].split(separator: ",").map {
            guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n >= 0 else { throw CLIError("the .npy header's shape is not whole numbers: \(header)") }
            return n
        }
        return (descr, fortran, shape)
    }

    func next() throws -> InputRow? {
        guard row < rows else { return nil }
        row += 1
        let d = dimension
        let vector: [Float]? = half
            ? try file.take(d * 2) { raw in (0..<d).map { halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) } }
            : try file.take(d * 4) { raw in
                [Float](unsafeUninitializedCapacity: d) { out, n in
                    for i in 0..<d { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
                    n = d
                }
            }
        guard let vector else { throw CLIError("the file ends inside the row; the header promises \(rows) rows of \(d) values") }
        return InputRow(vector: vector)
    }
}

/// IEEE 754 binary16 to Float (normals, subnormals, infinities and NaN).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    case 31:
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

/// JSON Lines: one object per line, `{"id": 7 | "key": "…", "vector": […], "metadata": {…},
/// "payload": "<base64>"}`; blank lines are skipped.
final class JSONLinesReader: RowReader {
    private let file: ChunkedFile
    private var line = 0
    var position: String { "line \(line)" }
    var bytesRead: Int { file.consumed }

    init(_ file: ChunkedFile) { self.file = file }

    func next() throws -> InputRow? {
        while let bytes = try file.line() {
            line += 1
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            return try JSONRow.decode(bytes)
        }
        return nil
    }
}
