// The JSON bodies of the HTTP API (docs/openapi.json is their schema) and how metadata
// values and filters map onto the library's `MetadataValue` and `Filter`.
import Foundation
import IndexCore
import SegmentFormat
import Vecgo

/// A JSON value as written in a request (metadata values, filter operands).
enum JSONValue: Codable, Sendable, Equatable {
    case string(String), int(Int64), double(Double), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    /// The metadata value: a string, an integer, a number, a boolean, a list of strings, or
    /// `{"timestamp": <microseconds since 1970>}`.
    func metadataValue(_ what: @autoclosure () -> String) throws(ServerError) -> MetadataValue {
        switch self {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .bool(let b): return .bool(b)
        case .array(let a):
            var list: [String] = []
            for v in a {
                guard case .string(let s) = v else { throw .badRequest("\(what()): a list value holds strings only") }
                list.append(s)
            }
            return .stringList(list)
        case .object(let o):
            guard o.count == 1, case .int(let us)? = o["timestamp"] else {
                throw .badRequest("\(what()): an object value must be {\"timestamp\": <microseconds since 1970>}")
            }
            return .timestamp(microseconds: us)
        case .null:
            throw .badRequest("\(what()): null is not a metadata value")
        }
    }

    /// The JSON form of a metadata value (the inverse of ``metadataValue(_:)``).
    init(_ value: MetadataValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .float(let d): self = .double(d)
        case .bool(let b): self = .bool(b)
        case .stringList(let l): self = .array(l.map { .string($0) })
        case .timestamp(let us): self = .object(["timestamp": .int(us)])
        }
    }
}

/// Metadata from its JSON object.
func metadata(_ json: [String: JSONValue]?, _ what: String) throws(ServerError) -> Metadata {
    var m: Metadata = [:]
    for (k, v) in json ?? [:] { m[k] = try v.metadataValue("\(what).\(k)") }
    return m
}

/// A filter from its JSON form. Each filter object has exactly one key:
///
/// - `{"eq": {"field": F, "value": V}}`
/// - `{"in": {"field": F, "values": [V, …]}}`
/// - `{"range": {"field": F, "gt"|"gte": V, "lt"|"lte": V}}` (at least one bound)
/// - `{"and": [filter, …]}`, `{"or": [filter, …]}`, `{"not": filter}`
func filter(_ json: JSONValue, depth: Int = 0, path: String = "filter") throws(ServerError) -> Filter {
    guard depth < 32 else { throw .badRequest("\(path): filters nest at most 32 deep") }
    guard case .object(let o) = json, o.count == 1, let (op, arg) = o.first else {
        throw .badRequest("\(path): a filter is an object with exactly one key (eq, in, range, and, or, not)")
    }
    let here = "\(path).\(op)"
    func fields() throws(ServerError) -> [String: JSONValue] {
        guard case .object(let f) = arg else { throw .badRequest("\(here): expected an object") }
        return f
    }
    func field(_ f: [String: JSONValue]) throws(ServerError) -> String {
        guard case .string(let s)? = f["field"], !s.isEmpty else { throw .badRequest("\(here).field: a non-empty string is required") }
        return s
    }
    func list() throws(ServerError) -> [Filter] {
        guard case .array(let a) = arg else { throw .badRequest("\(here): expected an array of filters") }
        var out: [Filter] = []
        for (i, f) in a.enumerated() { out.append(try filter(f, depth: depth + 1, path: "\(here)[\(i)]")) }
        return out
    }
    switch op {
    case "eq":
        let f = try fields()
        guard let v = f["value"] else { throw .badRequest("\(here).value is required") }
        return .equals(try field(f), try v.metadataValue("\(here).value"))
    case "in":
        let f = try fields()
        guard case .array(let a)? = f["values"] else { throw .badRequest("\(here).values: an array is required") }
        var values: [MetadataValue] = []
        for (i, v) in a.enumerated() { values.append(try v.metadataValue("\(here).values[\(i)]")) }
        return .isIn(try field(f), values)
    case "range":
        let f = try fields()
        guard f["gt"] == nil || f["gte"] == nil, f["lt"] == nil || f["lte"] == nil else {
            throw .badRequest("\(here): give at most one lower (gt, gte) and one upper (lt, lte) bound")
        }
        let lo = f["gt"] ?? f["gte"], hi = f["lt"] ?? f["lte"]
        guard lo != nil || hi != nil else { throw .badRequest("\(here): at least one of gt, gte, lt, lte is required") }
        return .range(try field(f), min: try lo?.metadataValue("\(here) lower bound"), max: try hi?.metadataValue("\(here) upper bound"),
                      minExclusive: f["gt"] != nil, maxExclusive: f["lt"] != nil)
    case "and": return .and(try list())
    case "or": return .or(try list())
    case "not": return .not(try filter(arg, depth: depth + 1, path: here))
    default:
        throw .badRequest("\(path): unknown filter '\(op)' (eq, in, range, and, or, not)")
    }
}

/// `POST /v1/search`.
struct SearchRequest: Decodable {
    var vector: [Float]
    var k: Int?
    var filter: JSONValue?
    var include: [String]?
    var ef: Int?
    var nprobe: Int?
}

/// One hit of a search.
struct SearchHit: Encodable {
    var id: UInt64
    var key: String?
    var distance: Float
    var metadata: [String: JSONValue]?
    var payload: String?
    var vector: [Float]?
}

/// The answer to a search.
struct SearchResponse: Encodable {
    var version: UInt64
    var results: [SearchHit]
}

/// One row of `POST /v1/upsert`: under `id`, under `key`, or (neither) under a generated id.
struct UpsertRow: Decodable {
    var id: UInt64?
    var key: String?
    var vector: [Float]
    var metadata: [String: JSONValue]?
    var payload: String?
}

/// `POST /v1/upsert`.
struct UpsertRequest: Decodable {
    var rows: [UpsertRow]
    var commit: Bool?
}

/// `POST /v1/delete`.
struct DeleteRequest: Decodable {
    var ids: [UInt64]?
    var keys: [String]?
    var commit: Bool?
}

/// The answer to a write: the ids written, the rows pending, and the version when it committed.
struct WriteResponse: Encodable {
    var ids: [UInt64]
    var pending: Int
    var version: UInt64?
}

/// The answer to `POST /v1/commit`.
struct CommitResponse: Encodable {
    var version: UInt64
    var pending: Int
}

/// `GET /v1/info`.
struct InfoResponse: Encodable {
    var dimension: Int
    var metric: String
    var version: UInt64
    var rows: UInt64
    var segments: Int
    var readOnly: Bool
    var pending: Int
}

/// `GET /healthz` and `GET /readyz`.
struct StatusResponse: Encodable {
    var status: String
    var version: UInt64?
}
