// MetadataValue, the typed metadata of a row (`Metadata`), and MetadataCodec, its wire form.
/// A typed metadata value attached to a vector.
public enum MetadataValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case stringList([String])
    /// Microseconds since 1970-01-01T00:00:00Z.
    case timestamp(microseconds: Int64)

    /// The wire tag of each type (spec/format.md, "Metadata section").
    var tag: UInt8 {
        switch self {
        case .string: 1
        case .int: 2
        case .float: 3
        case .bool: 4
        case .stringList: 5
        case .timestamp: 6
        }
    }
}

/// The metadata of one row: field name to value.
public typealias Metadata = [String: MetadataValue]

enum MetadataCodec {
    /// Encodes one row's fields in ascending key order, so encoding is deterministic.
    static func encode(_ row: Metadata, into w: inout ByteWriter) throws(FormatError) {
        guard row.count <= Int(UInt16.max) else {
            throw FormatError(.invalidInput, object: "", offset: 0, "a row has more than 65535 metadata fields")
        }
        w.write(UInt16(row.count))
        for key in row.keys.sorted() {
            let value = row[key]!
            try w.writeString16(key)
            w.write(value.tag)
            switch value {
            case .string(let s): w.writeString32(s)
            case .int(let i): w.write(i)
            case .float(let d): w.write(d)
            case .bool(let b): w.write(UInt8(b ? 1 : 0))
            case .stringList(let list):
                w.write(UInt32(list.count))
                for s in list { w.writeString32(s) }
            case .timestamp(let micros): w.write(micros)
            }
        }
    }

    static func decode(_ r: inout ByteReader) throws(FormatError) -> Metadata {
        let count = Int(try r.read(UInt16.self, "metadata field count"))
        var row = Metadata(minimumCapacity: count)
        for _ in 0..<count {
            let key = try r.readString16("metadata key")
            let tagOffset = r.offset
            let tag = try r.read(UInt8.self, "metadata type")
            let value: MetadataValue
            switch tag {
            case 1: value = .string(try r.readString32("metadata string"))
            case 2: value = .int(try r.read(Int64.self, "metadata int"))
            case 3: value = .float(try r.readDouble("metadata float"))
            case 4:
                let b = try r.read(UInt8.self, "metadata bool")
                guard b <= 1 else { throw r.error(.corrupted, "bool value \(b) is neither 0 nor 1") }
                value = .bool(b == 1)
            case 5:
                let n = Int(try r.read(UInt32.self, "string list count"))
                // Each string takes at least its 4-byte length: refuse counts the bytes cannot hold.
                guard n <= r.remaining / 4 else { throw r.error(.truncated, "string list of \(n) entries exceeds the section") }
                var list: [String] = []
                list.reserveCapacity(n)
                for _ in 0..<n { list.append(try r.readString32("string list entry")) }
                value = .stringList(list)
            case 6: value = .timestamp(microseconds: try r.read(Int64.self, "metadata timestamp"))
            default:
                throw FormatError(.corrupted, object: r.object, offset: tagOffset, "unknown metadata type \(tag)")
            }
            guard row.updateValue(value, forKey: key) == nil else {
                throw r.error(.corrupted, "metadata key '\(key)' appears twice in one row")
            }
        }
        return row
    }
}
