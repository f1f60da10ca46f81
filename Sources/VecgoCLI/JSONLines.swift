// The JSON of `vecgo import`/`export` rows: a small JSON parser that keeps each number's text
// (so 2 stays an integer and 2.0 a float in metadata), the mapping between JSON and Vecgo
// metadata, and the writer of one exported row.
import Foundation
import Vecgo

/// A parsed JSON value; numbers keep their literal text.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

/// A recursive-descent parser of one JSON text (RFC 8259), with errors that give the column.
struct JSONParser {
    private let bytes: [UInt8]
    private var at = 0
    private var depth = 0

    /// Parses `bytes` as exactly one JSON value.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var p = JSONParser(bytes: bytes)
        let v = try p.value()
        p.skipSpace()
        guard p.at == bytes.count else { throw p.error("unexpected text after the JSON value") }
        return v
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ what: String) -> CLIError { CLIError("invalid JSON at column \(at + 1): \(what)") }

    private mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
    }

    private mutating func expect(_ literal: String, _ v: JSONValue) throws -> JSONValue {
        let l = Array(literal.utf8)
        guard at + l.count <= bytes.count, Array(bytes[at..<at + l.count]) == l else { throw error("expected a value") }
        at += l.count
        return v
    }

    private mutating func value() throws -> JSONValue {
        skipSpace()
        guard at < bytes.count else { throw error("the line ends where a value was expected") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            depth += 1
            guard depth <= 64 else { throw error("nested more than 64 deep") }
            defer { depth -= 1 }
            at += 1
            var out: [String: JSONValue] = [:]
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(out) }
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a quoted field name") }
                let k = try string()
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':' after \"\(k)\"") }
                at += 1
                guard out[k] == nil else { throw error("the field \"\(k)\" appears twice") }
                out[k] = try value()
                skipSpace()
                guard at < bytes.count else { throw error("the object is not closed") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(out) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            guard depth <= 64 else { throw error("nested more than 64 deep") }
            defer { depth -= 1 }
            at += 1
            var out: [JSONValue] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(out) }
            while true {
                out.append(try value())
                skipSpace()
                guard at < bytes.count else { throw error("the array is not closed") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(out) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        default: return .number(try number())
        }
    }

    private mutating func number() throws -> String {
        let start = at
        if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
        func digits() -> Int {
            let s = at
            while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
            return at - s
        }
        guard digits() > 0 else { at = start; throw error("expected a value") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw error("expected digits after '.'") }
        }
        if at < bytes.count, bytes[at] | 0x20 == UInt8(ascii: "e") {
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw error("expected digits in the exponent") }
        }
        return String(decoding: bytes[start..<at], as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        guard at + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
            throw error("expected four hex digits after \\u")
        }
        at += 4
        return v
    }

    private mutating func string() throws -> String {
        at += 1  // the opening quote
        var out: [UInt8] = []
        while true {
            guard at < bytes.count else { throw error("the string is not closed") }
            let c = bytes[at]
            at += 1
            switch c {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard at < bytes.count else { throw error("the string is not closed") }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard at + 2 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
                            throw error("a high surrogate without its low surrogate")
                        }
                        at += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a high surrogate without its low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("\\u escape of a lone surrogate") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("unknown escape \\\(Character(Unicode.Scalar(e)))")
                }
            case 0..<0x20: throw error("a control character inside a string")
            default: out.append(c)
            }
        }
    }
}

/// The row object of `vecgo import`/`export`.
enum JSONRow {
    /// The metadata field a timestamp is written as: `{"$timestamp_us": <microseconds since 1970>}`.
    static let timestampField = "$timestamp_us"

    /// Reads one line's row object.
    static func decode(_ line: [UInt8]) throws -> InputRow {
        guard case .object(let o) = try JSONParser.parse(line) else { throw CLIError("the line is not a JSON object") }
        for k in o.keys where !["id", "key", "vector", "metadata", "payload"].contains(k) {
            throw CLIError("unknown field \"\(k)\" (a row has id or key, vector, metadata, payload)")
        }
        var row = InputRow(vector: [])
        switch (o["id"], o["key"]) {
        case (.number(let n)?, nil):
            guard let id = UInt64(n) else { throw CLIError("\"id\" \(n) is not a whole number in 0...\(UInt64.max)") }
            row.id = id
        case (nil, .string(let k)?): row.key = k
        case (nil, nil): break  // the id offset plus the row number
        case (_?, _?): throw CLIError("a row has \"id\" or \"key\", not both")
        default: throw CLIError("\"id\" must be a whole number and \"key\" a string")
        }
        guard case .array(let values)? = o["vector"] else { throw CLIError("\"vector\" is missing or not an array") }
        guard !values.isEmpty else { throw CLIError("\"vector\" is empty") }
        row.vector = try values.enumerated().map { i, v in
            guard case .number(let n) = v, let f = Float(n), f.isFinite else {
                throw CLIError("\"vector\"[\(i)] is not a finite number")
            }
            return f
        }
        switch o["metadata"] {
        case nil, .null?: break
        case .object(let fields)?: row.metadata = try metadata(fields)
        default: throw CLIError("\"metadata\" is not an object")
        }
        switch o["payload"] {
        case nil, .null?: break
        case .string(let b64)?:
            guard let d = Data(base64Encoded: b64) else { throw CLIError("\"payload\" is not base64") }
            row.payload = Array(d)
        default: throw CLIError("\"payload\" is not a base64 string")
        }
        return row
    }

    /// JSON metadata fields as Vecgo metadata: strings, integers, floats (numbers with a
    /// fraction or exponent), booleans, arrays of strings, and `{"$timestamp_us": N}`.
    static func metadata(_ fields: [String: JSONValue]) throws -> Metadata {
        var out: Metadata = [:]
        for (k, v) in fields {
            guard k != Vecgo.keyField else { throw CLIError("metadata field \"\(k)\" is reserved for string keys; use \"key\"") }
            switch v {
            case .string(let s): out[k] = .string(s)
            case .bool(let b): out[k] = .bool(b)
            case .number(let n):
                if n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                    guard let d = Double(n), d.isFinite else { throw CLIError("metadata \"\(k)\": \(n) is not a finite number") }
                    out[k] = .float(d)
                } else {
                    guard let i = Int64(n) else { throw CLIError("metadata \"\(k)\": \(n) does not fit a 64-bit integer") }
                    out[k] = .int(i)
                }
            case .array(let items):
                out[k] = .stringList(try items.map {
                    guard case .string(let s) = $0 else { throw CLIError("metadata \"\(k)\": lists hold strings only") }
                    return s
                })
            case .object(let o):
                guard o.count == 1, case .number(let n)? = o[timestampField], let us = Int64(n) else {
                    throw CLIError("metadata \"\(k)\": objects are only {\"\(timestampField)\": <integer>}")
                }
                out[k] = .timestamp(microseconds: us)
            case .null: throw CLIError("metadata \"\(k)\" is null; leave the field out instead")
            }
        }
        return out
    }

    /// One exported row as a line of JSON (without the newline): "key" for string-keyed rows,
    /// "id" otherwise; floats always with a fraction or exponent, so they import as floats.
    static func encode(_ row: LiveRow) throws -> String {
        var s = "{"
        var metadata = row.metadata
        if case .string(let key)? = metadata.removeValue(forKey: Vecgo.keyField), Vecgo.id(forKey: key) == row.id {
            s += "\"key\":" + quoted(key)
        } else {
            metadata = row.metadata
            s += "\"id\":\(row.id)"
        }
        s += ",\"vector\":[" + row.vector.map { "\($0)" }.joined(separator: ",") + "]"
        if !metadata.isEmpty {
            s += ",\"metadata\":{"
            s += try metadata.keys.sorted().map { k in quoted(k) + ":" + (try value(metadata[k]!, field: k, id: row.id)) }.joined(separator: ",")
            s += "}"
        }
        if !row.payload.isEmpty { s += ",\"payload\":\"" + Data(row.payload).base64EncodedString() + "\"" }
        return s + "}"
    }

    private static func value(_ v: MetadataValue, field: String, id: UInt64) throws -> String {
        switch v {
        case .string(let s): return quoted(s)
        case .int(let i): return "\(i)"
        case .float(let d):
            guard d.isFinite else { throw CLIError("row \(id): metadata \"\(field)\" is \(d), which JSON cannot hold") }
            let text = "\(d)"
            return text.contains(where: { $0 == "." || $0 == "e" }) ? text : text + ".0"
        case .bool(let b): return b ? "true" : "false"
        case .stringList(let l): return "[" + l.map(quoted).joined(separator: ",") + "]"
        case .timestamp(let us): return "{\"\(timestampField)\":\(us)}"
        }
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
