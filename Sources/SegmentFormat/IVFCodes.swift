// Quantized codes of an IVF segment's rows (spec/format.md, "IVF codes"): the code book in the
// tail, and per partition a block of row info (key + vector checksum), 1-bit codes and 8-bit
// codes, so a cold query scans a partition's compact codes and re-reads only a few exact vectors.

/// The code book of an IVF segment's quantized codes: which kinds of codes there are, their
/// parameters, and the checksum of every partition's blocks. It lies in the segment's tail,
/// so a reader has it before it reads any data.
public struct IVFCodebook: Sendable, Equatable {
    /// The kinds of codes stored (bits of the code book's first word).
    public struct Kinds: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// 1 bit per (padded) dimension with two f32 factors per row (RaBitQ-style).
        public static let binary = Kinds(rawValue: 1)
        /// 8 bits per dimension (scalar quantization with per-dimension minimum and step).
        public static let sq8 = Kinds(rawValue: 2)
        /// The kinds this build reads.
        public static let known: Kinds = [.binary, .sq8]
    }

    /// One of the blocks each partition's codes are stored in, in this order.
    public enum Block: Int, Sendable, CaseIterable {
        /// Per row: u64 key, u32 CRC32C of the row's exact vector bytes.
        case rowInfo = 0
        /// Per row: the 1-bit code (paddedDimension / 8 bytes), f32 norm, f32 dot factor, f32 centroid term.
        case binary = 1
        /// Per row: `dimension` bytes of 8-bit codes.
        case sq8 = 2
    }

    /// Bytes of one row's row-info entry.
    public static let rowInfoStride = 12

    /// The kinds of codes stored.
    public var kinds: Kinds
    /// The seed of the binary codes' random rotation (0 without binary codes).
    public var seed: UInt64
    /// The binary codes' padded dimension: the smallest power of two ≥ max(dimension, 64)
    /// (0 without binary codes).
    public var paddedDimension: Int
    /// SQ8: each dimension's minimum (empty without SQ8 codes).
    public var sq8Minimums: [Float]
    /// SQ8: each dimension's step (empty without SQ8 codes).
    public var sq8Scales: [Float]
    /// CRC32C of each partition's blocks: `3 × nlist` values, per partition row info, binary,
    /// SQ8 (an empty block's CRC is 0). Filled by the encoder.
    public var blockCRCs: [UInt32]

    public init(kinds: Kinds, seed: UInt64 = 0, paddedDimension: Int = 0, sq8Minimums: [Float] = [], sq8Scales: [Float] = [],
                blockCRCs: [UInt32] = []) {
        self.kinds = kinds
        self.seed = seed
        self.paddedDimension = paddedDimension
        self.sq8Minimums = sq8Minimums
        self.sq8Scales = sq8Scales
        self.blockCRCs = blockCRCs
    }

    /// Code books are equal when their parameters are; the checksums follow from the rows.
    public static func == (a: IVFCodebook, b: IVFCodebook) -> Bool {
        a.kinds == b.kinds && a.seed == b.seed && a.paddedDimension == b.paddedDimension
            && a.sq8Minimums == b.sq8Minimums && a.sq8Scales == b.sq8Scales
    }

    /// The padded dimension binary codes use for vectors of `dimension` floats.
    public static func paddedDimension(for dimension: Int) -> Int {
        var p = 64
        while p < dimension { p <<= 1 }
        return p
    }

    /// Bytes of one row in `block`.
    public func stride(_ block: Block, dimension: Int) -> Int {
        switch block {
        case .rowInfo: Self.rowInfoStride
        case .binary: kinds.contains(.binary) ? paddedDimension / 8 + 12 : 0
        case .sq8: kinds.contains(.sq8) ? dimension : 0
        }
    }

    /// Bytes of one row over all blocks.
    public func recordBytes(dimension: Int) -> Int {
        Block.allCases.reduce(0) { $0 + stride($1, dimension: dimension) }
    }

    /// Where `block` of the partition holding `rows` lies, relative to the start of the codes
    /// section of a segment of `totalRows` rows: the section is three regions, row info, binary
    /// codes, SQ8 codes, each in row order (so partition by partition), and a scan reads only the
    /// regions it needs.
    public func range(_ block: Block, rows: Range<Int>, totalRows: Int, dimension: Int) -> Range<UInt64> {
        var start: UInt64 = 0
        for b in Block.allCases where b.rawValue < block.rawValue {
            start += UInt64(totalRows) * UInt64(stride(b, dimension: dimension))
        }
        let s = UInt64(stride(block, dimension: dimension))
        return start + UInt64(rows.lowerBound) * s..<start + UInt64(rows.upperBound) * s
    }

    /// Checks one block of partition `p`, read on its own, against its checksum.
    public func check(_ block: Block, partition p: Int, bytes: [UInt8], object: String, offset: UInt64) throws(FormatError) {
        guard crc32c(bytes) == blockCRCs[3 * p + block.rawValue] else {
            throw FormatError(.corrupted, object: object, offset: offset, "partition \(p) \(block) codes checksum mismatch")
        }
    }

    func encode(dimension: Int) -> [UInt8] {
        var w = ByteWriter()
        w.write(kinds.rawValue)
        w.write(UInt32(0))
        w.write(kinds.contains(.binary) ? seed : 0)
        w.write(UInt32(kinds.contains(.binary) ? paddedDimension : 0))
        w.write(UInt32(blockCRCs.count / 3))
        if kinds.contains(.sq8) {
            w.write(floats: sq8Minimums)
            w.write(floats: sq8Scales)
        }
        for c in blockCRCs { w.write(c) }
        return w.bytes
    }

    /// Decodes the code book section; nil when it uses a kind of code this build does not
    /// know (a reader then ignores the codes and scans exact vectors).
    static func decode(_ raw: [UInt8], footer: SegmentFooter, nlist: Int, object: String, offset: UInt64) throws(FormatError) -> IVFCodebook? {
        var r = ByteReader(raw, object: object, baseOffset: offset)
        let kinds = Kinds(rawValue: try r.read(UInt32.self, "code kinds"))
        guard try r.read(UInt32.self, "reserved") == 0 else { throw r.error(.corrupted, "reserved code book field is not 0") }
        let seed = try r.read(UInt64.self, "rotation seed")
        let padded = Int(try r.read(UInt32.self, "padded dimension"))
        let lists = Int(try r.read(UInt32.self, "partition count"))
        guard kinds.isSubset(of: .known) else { return nil }
        guard !kinds.isEmpty, lists == nlist else {
            throw r.error(.corrupted, "code book of kinds \(kinds.rawValue) for \(lists) partitions does not fit \(nlist) partitions")
        }
        if kinds.contains(.binary) {
            guard padded == paddedDimension(for: footer.dimension) else {
                throw r.error(.corrupted, "padded dimension \(padded) is not the one of dimension \(footer.dimension)")
            }
        } else {
            guard padded == 0, seed == 0 else { throw r.error(.corrupted, "a code book without binary codes has a seed or padded dimension") }
        }
        var minimums: [Float] = [], scales: [Float] = []
        if kinds.contains(.sq8) {
            minimums = try r.readFloats(footer.dimension, "SQ8 minimums")
            scales = try r.readFloats(footer.dimension, "SQ8 steps")
            guard minimums.allSatisfy(\.isFinite), scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw r.error(.corrupted, "SQ8 minimums and steps must be finite, steps positive")
            }
        }
        guard r.remaining == nlist * 12 else {
            throw r.error(.corrupted, "code book holds \(r.remaining) bytes of checksums for \(nlist) partitions")
        }
        var crcs: [UInt32] = []
        crcs.reserveCapacity(3 * nlist)
        for _ in 0..<3 * nlist { crcs.append(try r.read(UInt32.self)) }
        return IVFCodebook(kinds: kinds, seed: seed, paddedDimension: padded, sq8Minimums: minimums, sq8Scales: scales, blockCRCs: crcs)
    }
}

/// An IVF segment's quantized codes, whole: the code book and every row's codes in row order
/// (what a writer hands the encoder and a full decode returns). The row-info block is not
/// here: the encoder derives it from the ids and vectors.
public struct IVFCodes: Sendable, Equatable {
    /// Kinds and parameters.
    public var codebook: IVFCodebook
    /// Per row, `codebook.stride(.binary)` bytes: code bits (bit j is bit j % 8 of byte j / 8),
    /// then f32 norm, f32 dot factor and f32 centroid term. Empty without binary codes.
    public var binary: [UInt8]
    /// Per row, `dimension` SQ8 codes. Empty without SQ8 codes.
    public var sq8: [UInt8]

    public init(codebook: IVFCodebook, binary: [UInt8] = [], sq8: [UInt8] = []) {
        self.codebook = codebook
        self.binary = binary
        self.sq8 = sq8
    }

    /// Lays the codes section out (the row info, binary and SQ8 regions, each in row order) and
    /// fills the code book's block checksums (per partition and region).
    func encodeSection(layout: IVFLayout, ids: [UInt64], vectorBytes: ArraySlice<UInt8>, dimension: Int) -> (section: [UInt8], codebook: IVFCodebook) {
        var book = codebook
        let bs = book.stride(.binary, dimension: dimension), ss = book.stride(.sq8, dimension: dimension)
        let dim4 = dimension * 4
        var info = ByteWriter(capacity: ids.count * IVFCodebook.rowInfoStride)
        for row in ids.indices {
            info.write(ids[row])
            info.write(vectorBytes.withUnsafeBytes { crc32c(UnsafeRawBufferPointer(rebasing: $0[row * dim4..<(row + 1) * dim4])) })
        }
        var crcs: [UInt32] = []
        crcs.reserveCapacity(3 * layout.nlist)
        for p in 0..<layout.nlist {
            let rows = layout.rows(p)
            crcs.append(crc32c(info.bytes[rows.lowerBound * IVFCodebook.rowInfoStride..<rows.upperBound * IVFCodebook.rowInfoStride]))
            crcs.append(bs > 0 ? crc32c(binary[rows.lowerBound * bs..<rows.upperBound * bs]) : 0)
            crcs.append(ss > 0 ? crc32c(sq8[rows.lowerBound * ss..<rows.upperBound * ss]) : 0)
        }
        book.blockCRCs = crcs
        return (info.bytes + binary + sq8, book)
    }

    /// Decodes the codes section against its code book, checking every block's checksum and
    /// that each row's info names the row's key and the checksum of its exact vector.
    static func decodeSection(_ raw: [UInt8], codebook: IVFCodebook, layout: IVFLayout, ids: [UInt64], vectorBytes: [UInt8]?,
                              dimension: Int, object: String, offset: UInt64, verify: Bool) throws(FormatError) -> IVFCodes {
        let record = codebook.recordBytes(dimension: dimension)
        guard raw.count == ids.count * record else {
            throw FormatError(.corrupted, object: object, offset: offset,
                              "codes section holds \(raw.count) bytes for \(ids.count) rows of \(record) bytes")
        }
        let bs = codebook.stride(.binary, dimension: dimension), ss = codebook.stride(.sq8, dimension: dimension)
        let dim4 = dimension * 4
        var binary: [UInt8] = [], sq8: [UInt8] = []
        binary.reserveCapacity(ids.count * bs)
        sq8.reserveCapacity(ids.count * ss)
        for p in 0..<layout.nlist {
            let rows = layout.rows(p)
            for block in IVFCodebook.Block.allCases {
                let range = codebook.range(block, rows: rows, totalRows: ids.count, dimension: dimension)
                let bytes = Array(raw[Int(range.lowerBound)..<Int(range.upperBound)])
                if verify { try codebook.check(block, partition: p, bytes: bytes, object: object, offset: offset + range.lowerBound) }
                switch block {
                case .rowInfo:
                    var r = ByteReader(bytes, object: object, baseOffset: offset + range.lowerBound)
                    for row in rows {
                        let key = try r.read(UInt64.self, "row key"), crc = try r.read(UInt32.self, "row checksum")
                        guard key == ids[row] else { throw r.error(.corrupted, "codes of row \(row) name key \(key), the row holds \(ids[row])") }
                        if verify, let vectorBytes {
                            let actual = vectorBytes.withUnsafeBytes { crc32c(UnsafeRawBufferPointer(rebasing: $0[row * dim4..<(row + 1) * dim4])) }
                            guard actual == crc else { throw r.error(.corrupted, "row \(row)'s vector checksum does not match its codes") }
                        }
                    }
                case .binary: binary += bytes
                case .sq8: sq8 += bytes
                }
            }
        }
        return IVFCodes(codebook: codebook, binary: binary, sq8: sq8)
    }
}
