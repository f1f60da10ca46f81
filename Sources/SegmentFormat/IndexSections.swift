// The index sections of a segment: IVFLayout (centroids, partition offsets and checksums) and
// GraphLayout (an HNSW graph over the rows), with their codecs.
/// The IVF layout of a segment: rows are stored partition by partition, and these sections
/// say where each partition starts and how to check it on its own (spec/format.md, "IVF").
public struct IVFLayout: Sendable, Equatable {
    /// Layouts are equal when centroids and offsets are; the checksums follow from the rows.
    public static func == (a: IVFLayout, b: IVFLayout) -> Bool {
        a.centroids == b.centroids && a.offsets == b.offsets
    }

    /// `nlist × dimension` centroid floats.
    public var centroids: [Float]
    /// Partition `p` holds rows `offsets[p] ..< offsets[p + 1]` (`nlist + 1` values, from 0 to rows).
    public var offsets: [UInt64]
    /// CRC32C of each partition's vector bytes (filled by the encoder).
    public var vectorCRCs: [UInt32]
    /// CRC32C of each partition's id bytes (filled by the encoder).
    public var idCRCs: [UInt32]

    public init(centroids: [Float], offsets: [UInt64], vectorCRCs: [UInt32] = [], idCRCs: [UInt32] = []) {
        self.centroids = centroids
        self.offsets = offsets
        self.vectorCRCs = vectorCRCs
        self.idCRCs = idCRCs
    }

    /// The number of partitions.
    public var nlist: Int { offsets.count - 1 }

    /// Rows of partition `p`.
    public func rows(_ p: Int) -> Range<Int> { Int(offsets[p])..<Int(offsets[p + 1]) }

    /// The partition holding row `row` (rows are stored partition by partition).
    public func partition(ofRow row: Int) -> Int {
        // The last partition whose first row is at or before `row` (empty partitions skipped).
        var lo = 0, hi = nlist - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if Int(offsets[mid]) <= row { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    func encodePartitions() -> [UInt8] {
        var w = ByteWriter(capacity: 8 + offsets.count * 8 + nlist * 8)
        w.write(UInt32(nlist))
        w.write(UInt32(0))
        for o in offsets { w.write(o) }
        for c in vectorCRCs { w.write(c) }
        for c in idCRCs { w.write(c) }
        return w.bytes
    }

    /// Decodes the partitions section and the raw centroid bytes, checking them against the footer.
    static func decode(partitions raw: [UInt8], centroids centroidBytes: [UInt8], footer: SegmentFooter, object: String,
                       offset: UInt64) throws(FormatError) -> IVFLayout {
        var r = ByteReader(raw, object: object, baseOffset: offset)
        let nlist = Int(try r.read(UInt32.self, "partition count"))
        try r.expectZero(4, "partition section reserved field")
        guard nlist >= 1, raw.count == 8 + (nlist + 1) * 8 + nlist * 8 else {
            throw r.error(.corrupted, "partition section of \(raw.count) bytes does not fit \(nlist) partitions")
        }
        var offsets: [UInt64] = []
        for _ in 0...nlist { offsets.append(try r.read(UInt64.self)) }
        guard offsets.first == 0, offsets.last == footer.rowCount, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw r.error(.corrupted, "partition offsets are not ascending from 0 to \(footer.rowCount)")
        }
        var vcrc: [UInt32] = [], icrc: [UInt32] = []
        for _ in 0..<nlist { vcrc.append(try r.read(UInt32.self)) }
        for _ in 0..<nlist { icrc.append(try r.read(UInt32.self)) }
        guard centroidBytes.count == nlist * footer.dimension * 4 else {
            throw FormatError(.corrupted, object: object, offset: offset,
                              "centroid section holds \(centroidBytes.count) bytes for \(nlist) × \(footer.dimension) floats")
        }
        var c = ByteReader(centroidBytes, object: object)
        return IVFLayout(centroids: try c.readFloats(nlist * footer.dimension), offsets: offsets, vectorCRCs: vcrc, idCRCs: icrc)
    }
}

extension IVFLayout {
    /// Checks one partition's vector and id bytes, read on their own, against its checksums.
    public func check(partition p: Int, vectors: [UInt8], ids: [UInt8], object: String, offset: UInt64) throws(FormatError) {
        guard crc32c(vectors) == vectorCRCs[p], crc32c(ids) == idCRCs[p] else {
            throw FormatError(.corrupted, object: object, offset: offset, "partition \(p) checksum mismatch")
        }
    }
}

/// An HNSW graph over a segment's rows, node `i` being row `i` (spec/format.md, "HNSW graph").
public struct GraphLayout: Sendable, Equatable {
    /// Links per node on upper levels; level 0 holds up to `2m`.
    public var m: Int
    /// The entry node.
    public var entryPoint: UInt32
    /// The top level (−1 when the graph is empty).
    public var maxLevel: Int
    /// Each node's level.
    public var levels: [UInt8]
    /// Level-0 links: per node `2m + 1` slots, a count then the neighbours.
    public var level0: [UInt32]
    /// Upper-level links of each node: `level × (m + 1)` slots (count then neighbours, per level).
    public var upper: [[UInt32]]

    public init(m: Int, entryPoint: UInt32, maxLevel: Int, levels: [UInt8], level0: [UInt32], upper: [[UInt32]]) {
        self.m = m
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.levels = levels
        self.level0 = level0
        self.upper = upper
    }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 16 + levels.count + level0.count * 4)
        w.write(UInt32(m))
        w.write(entryPoint)
        w.write(Int32(maxLevel))
        w.write(UInt32(levels.count))
        w.write(bytes: levels)
        w.pad(to: 4)
        for l in level0 { w.write(l) }
        for (node, row) in upper.enumerated() where levels[node] > 0 {
            for l in row { w.write(l) }
        }
        return w.bytes
    }

    static func decode(_ raw: [UInt8], footer: SegmentFooter, object: String, offset: UInt64) throws(FormatError) -> GraphLayout {
        var r = ByteReader(raw, object: object, baseOffset: offset)
        let m = Int(try r.read(UInt32.self, "m"))
        let entry = try r.read(UInt32.self, "entry point")
        let maxLevel = Int(try r.read(Int32.self, "max level"))
        let n = Int(try r.read(UInt32.self, "node count"))
        guard UInt64(n) == footer.rowCount, (2...1024).contains(m), maxLevel >= -1, maxLevel < 256,
              (n == 0) == (maxLevel == -1), n == 0 ? entry == 0 : Int(entry) < n else {
            throw r.error(.corrupted, "graph header (m \(m), \(n) nodes, entry \(entry), max level \(maxLevel)) does not fit the segment")
        }
        let levels = try r.readBytes(n, "levels")
        try r.skip((4 - (16 + n) % 4) % 4)
        let slots0 = 2 * m + 1
        guard n <= r.remaining / (slots0 * 4) else { throw r.error(.truncated, "level-0 links of \(n) nodes exceed the section") }
        var level0 = [UInt32](repeating: 0, count: n * slots0)
        for i in 0..<level0.count { level0[i] = try r.read(UInt32.self) }
        var upper = [[UInt32]](repeating: [], count: n)
        for node in 0..<n where levels[node] > 0 {
            let level = Int(levels[node])
            guard level <= maxLevel else { throw r.error(.corrupted, "node \(node) has level \(level) above the top \(maxLevel)") }
            let count = level * (m + 1)
            guard count <= r.remaining / 4 else { throw r.error(.truncated, "upper links of node \(node) exceed the section") }
            var row = [UInt32](repeating: 0, count: count)
            for i in 0..<count { row[i] = try r.read(UInt32.self) }
            upper[node] = row
        }
        try r.expectEnd("graph section")
        // Every link must name a node that exists on that level, and every count must fit its slots.
        for node in 0..<n {
            let c = Int(level0[node * slots0])
            guard c <= 2 * m else { throw r.error(.corrupted, "node \(node) has \(c) level-0 links, more than \(2 * m)") }
            for j in 0..<c where Int(level0[node * slots0 + 1 + j]) >= n {
                throw r.error(.corrupted, "node \(node) links to node \(level0[node * slots0 + 1 + j]) of \(n)")
            }
            for level in stride(from: 1, through: Int(levels[node]), by: 1) {
                let base = (level - 1) * (m + 1)
                let lc = Int(upper[node][base])
                guard lc <= m else { throw r.error(.corrupted, "node \(node) has \(lc) links on level \(level), more than \(m)") }
                for j in 0..<lc {
                    let target = Int(upper[node][base + 1 + j])
                    guard target < n, Int(levels[target]) >= level else {
                        throw r.error(.corrupted, "node \(node) links on level \(level) to node \(target), which is not on that level")
                    }
                }
            }
        }
        if n > 0 && Int(levels[Int(entry)]) != maxLevel {
            throw r.error(.corrupted, "the entry node is not on the top level")
        }
        return GraphLayout(m: m, entryPoint: entry, maxLevel: maxLevel, levels: levels, level0: level0, upper: upper)
    }
}
