// Metadata filters: the `Filter` conditions and how they become row bitmaps for the indexes.
package import IndexCore
public import SegmentFormat

/// A condition on a row's metadata. A row lacking the field never matches a comparison (and
/// so matches its `not`). Values compare within their own type; an int field also compares
/// with float bounds, and timestamps with timestamps.
public indirect enum Filter: Sendable, Hashable {
    /// The field equals the value (for a string list: contains it).
    case equals(String, MetadataValue)
    /// The field lies between the bounds; a nil bound is open, and each bound is inclusive
    /// unless its `…Exclusive` flag says otherwise.
    case range(String, min: MetadataValue?, max: MetadataValue?, minExclusive: Bool = false, maxExclusive: Bool = false)
    /// The field equals one of the values (for a string list: contains one of them).
    case isIn(String, [MetadataValue])
    /// Every condition holds (true when empty).
    case and([Filter])
    /// Some condition holds (false when empty).
    case or([Filter])
    /// The condition does not hold.
    case not(Filter)

    /// Whether `metadata` satisfies the filter.
    public func matches(_ metadata: Metadata) -> Bool {
        switch self {
        case .equals(let field, let value):
            guard let v = metadata[field] else { return false }
            return Self.equal(v, value)
        case .range(let field, let lo, let hi, let loEx, let hiEx):
            guard let v = metadata[field] else { return false }
            if let lo {
                guard let c = Self.compare(v, lo), loEx ? c > 0 : c >= 0 else { return false }
            }
            if let hi {
                guard let c = Self.compare(v, hi), hiEx ? c < 0 : c <= 0 else { return false }
            }
            return true
        case .isIn(let field, let values):
            guard let v = metadata[field] else { return false }
            return values.contains { Self.equal(v, $0) }
        case .and(let all): return all.allSatisfy { $0.matches(metadata) }
        case .or(let any): return any.contains { $0.matches(metadata) }
        case .not(let f): return !f.matches(metadata)
        }
    }

    /// The rows of `metadata` that match, as a bitmap.
    package func bitmap(_ metadata: [Metadata], rows: Int) -> Bitmap {
        var b = Bitmap(count: rows)
        for r in 0..<rows where matches(r < metadata.count ? metadata[r] : [:]) { b.insert(r) }
        return b
    }

    static func equal(_ a: MetadataValue, _ b: MetadataValue) -> Bool {
        if case .stringList(let list) = a, case .string(let s) = b { return list.contains(s) }
        return compare(a, b) == 0
    }

    /// -1, 0, 1, or nil when the values are of kinds that do not compare.
    static func compare(_ a: MetadataValue, _ b: MetadataValue) -> Int? {
        func cmp<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : (x > y ? 1 : 0) }
        switch (a, b) {
        case (.string(let x), .string(let y)): return cmp(x, y)
        case (.int(let x), .int(let y)): return cmp(x, y)
        case (.float(let x), .float(let y)): return cmp(x, y)
        case (.int(let x), .float(let y)): return cmp(Double(x), y)
        case (.float(let x), .int(let y)): return cmp(x, Double(y))
        case (.bool(let x), .bool(let y)): return cmp(x ? 1 : 0, y ? 1 : 0)
        case (.timestamp(let x), .timestamp(let y)): return cmp(x, y)
        case (.stringList(let x), .stringList(let y)): return x == y ? 0 : nil
        default: return nil
        }
    }
}

/// What a search returns besides id and distance.
public struct Include: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// The row's metadata.
    public static let metadata = Include(rawValue: 1)
    /// The row's payload.
    public static let payload = Include(rawValue: 2)
    /// The row's stored vector (normalised, for the cosine metric).
    public static let vector = Include(rawValue: 4)
    /// Everything.
    public static let all: Include = [.metadata, .payload, .vector]
}
