/// A set of row numbers as bits: the form filters take when they reach an index. Row `i` of a
/// flat or IVF index is its `i`-th stored row; of an HNSW graph, its `i`-th inserted node.
public struct Bitmap: Sendable, Hashable {
    private var words: [UInt64]
    /// The number of rows the bitmap covers.
    public let count: Int

    /// A bitmap of `count` rows, all set or all clear.
    public init(count: Int, allSet: Bool = false) {
        self.count = count
        words = [UInt64](repeating: allSet ? ~0 : 0, count: (count + 63) / 64)
        if allSet && count % 64 != 0 { words[words.count - 1] = (1 << UInt64(count % 64)) - 1 }
    }

    /// Whether row `i` is in the set.
    @inlinable public func contains(_ i: Int) -> Bool { i < count && wordContains(i) }

    @usableFromInline func wordContains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    /// Adds row `i`.
    public mutating func insert(_ i: Int) {
        precondition(i >= 0 && i < count, "row \(i) outside a bitmap of \(count)")
        words[i >> 6] |= 1 << UInt64(i & 63)
    }

    /// Removes row `i`.
    public mutating func remove(_ i: Int) {
        precondition(i >= 0 && i < count, "row \(i) outside a bitmap of \(count)")
        words[i >> 6] &= ~(1 << UInt64(i & 63))
    }

    /// The bit words (64 rows per word, row `i` at bit `i % 64` of word `i / 64`), padded with
    /// clear words to cover `rows` rows: what a C scan reads one bit per row from.
    func covering(_ rows: Int) -> [UInt64] {
        let need = (rows + 63) / 64
        return words.count >= need ? words : words + [UInt64](repeating: 0, count: need - words.count)
    }

    /// Rows in the set.
    public var cardinality: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Calls `body` with every row in the set below `limit` (all rows when nil), in ascending order.
    @inlinable public func forEachRow(below limit: Int? = nil, _ body: (Int) throws -> Void) rethrows {
        let end = Swift.min(limit ?? count, count)
        var w = 0
        while w << 6 < end {
            var bits = word(w)
            while bits != 0 {
                let row = w << 6 + bits.trailingZeroBitCount
                if row >= end { return }
                try body(row)
                bits &= bits - 1
            }
            w += 1
        }
    }

    @usableFromInline func word(_ w: Int) -> UInt64 { words[w] }

    /// Rows in both.
    public func intersection(_ other: Bitmap) -> Bitmap {
        var r = self
        for i in 0..<min(words.count, other.words.count) { r.words[i] &= other.words[i] }
        if other.words.count < words.count { for i in other.words.count..<words.count { r.words[i] = 0 } }
        return r
    }

    /// Rows in either.
    public func union(_ other: Bitmap) -> Bitmap {
        var r = self
        for i in 0..<min(words.count, other.words.count) { r.words[i] |= other.words[i] }
        return r
    }

    /// Rows not in the set.
    public func inverted() -> Bitmap {
        var r = self
        for i in r.words.indices { r.words[i] = ~r.words[i] }
        if count % 64 != 0, !r.words.isEmpty { r.words[r.words.count - 1] &= (1 << UInt64(count % 64)) - 1 }
        return r
    }
}
