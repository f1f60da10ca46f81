// The sparse block file of the L2 disk tier (layout VGCBLK03): which pages of one block it holds,
// one CRC32C per held page, and those pages packed in page order.
internal import CVecgoNative

/// The shape of a disk block: `pagesPerBlock` pages of `pageSize` bytes.
struct BlockGeometry: Sendable, Equatable {
    var pageSize: Int
    var pagesPerBlock: Int

    var blockSize: Int { pageSize * pagesPerBlock }

    /// The bytes page `p` holds when the object ends `end` bytes into the block (nil: the
    /// block does not hold the object's end): a whole page, fewer for the page holding the end,
    /// none past it.
    func length(ofPage p: Int, end: Int?) -> Int {
        guard let end else { return pageSize }
        return max(0, min(pageSize, end - p * pageSize))
    }
}

/// One page of a block file: its index in the block, its bytes and their CRC32C.
struct BlockPage: Sendable {
    var index: Int
    var bytes: [UInt8]
    var crc: UInt32
}

/// The header of a block file, decoded and checked (its own CRC, the counts, the end).
///
/// The byte layout, every integer little-endian:
///
/// | offset      | size    | field                                                                |
/// |-------------|---------|----------------------------------------------------------------------|
/// | 0           | 8       | magic `VGCBLK03`                                                     |
/// | 8           | 4       | N: length of the object name in bytes                                |
/// | 12          | 4       | S: page size (4096)                                                  |
/// | 16          | 8       | block index (offset in the object / block size)                      |
/// | 24          | 4       | P: pages per block                                                   |
/// | 28          | 4       | C: pages held                                                        |
/// | 32          | 4       | E: where the object ends in this block, in bytes, or `0xFFFF_FFFF`    |
/// |             |         | when the block does not hold the object's end                       |
/// | 36          | N       | the object name (UTF-8), to tell a hash collision from a hit         |
/// | 36+N        | ⌈P/8⌉   | presence bitmap: bit `p % 8` of byte `p / 8` is set when page p held |
/// | …           | 4·C     | CRC32C of each held page, in page order                              |
/// | …           | 4       | CRC32C of every byte before it                                       |
/// | …           | …       | the held pages in page order, each S bytes, except that the page     |
/// |             |         | holding the object's end has `E - p·S` bytes; no page lies past E    |
///
/// A page's data sits at `dataStart + S · (held pages before it)`: only the page holding the
/// end can be short, and it is the last one held.
struct BlockFileHeader: Sendable {
    var geometry: BlockGeometry
    var end: Int?
    var bitmap: [UInt8]
    /// CRC32C of each held page, in page order.
    var crcs: [UInt32]
    /// Offset of the first held page's data in the file.
    var dataStart: Int

    func holds(_ p: Int) -> Bool {
        p >= 0 && p < geometry.pagesPerBlock && bitmap[p >> 3] & (1 << UInt8(p & 7)) != 0
    }

    /// How many pages before `p` the file holds (the position of `p`'s CRC and data).
    func rank(_ p: Int) -> Int {
        var n = 0
        for i in 0..<(p >> 3) { n += bitmap[i].nonzeroBitCount }
        if p & 7 != 0 { n += (bitmap[p >> 3] & ((1 << UInt8(p & 7)) - 1)).nonzeroBitCount }
        return n
    }
}

/// Encoding and decoding of block files (``BlockFileHeader`` has the layout).
enum BlockFile {
    static let magic: [UInt8] = Array("VGCBLK03".utf8)  // 02 (dense) and 01 files read as damaged and are replaced
    static let fixedSize = 36
    static let noEnd = UInt32.max

    /// The most header bytes a file of an object whose name has `nameCount` bytes can have.
    static func maxHeaderSize(nameCount: Int, _ g: BlockGeometry) -> Int {
        fixedSize + nameCount + (g.pagesPerBlock + 7) / 8 + 4 * g.pagesPerBlock + 4
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { vecgo_crc32c(0, $0.baseAddress, $0.count) }
    }

    /// A whole file holding `pages` (ascending, each of the length `end` gives it).
    static func encode(_ key: BlockKey, _ g: BlockGeometry, end: Int?, pages: [BlockPage]) -> [UInt8] {
        let name = Array(key.object.utf8)
        var bitmap = [UInt8](repeating: 0, count: (g.pagesPerBlock + 7) / 8)
        for p in pages { bitmap[p.index >> 3] |= 1 << UInt8(p.index & 7) }
        var out: [UInt8] = []
        out.reserveCapacity(fixedSize + name.count + bitmap.count + 8 * pages.count + 4 + g.pageSize * pages.count)
        out += magic
        appendLE(&out, UInt32(name.count))
        appendLE(&out, UInt32(g.pageSize))
        appendLE(&out, key.index)
        appendLE(&out, UInt32(g.pagesPerBlock))
        appendLE(&out, UInt32(pages.count))
        appendLE(&out, end.map { UInt32($0) } ?? noEnd)
        out += name
        out += bitmap
        for p in pages { appendLE(&out, p.crc) }
        appendLE(&out, out.withUnsafeBytes { vecgo_crc32c(0, $0.baseAddress, $0.count) })
        for p in pages { out += p.bytes }
        return out
    }

    enum Decoded { case header(BlockFileHeader), otherObject, damaged }

    /// Decodes the header at the start of `head` (which may hold more of the file, or all of
    /// it). A file of another object whose name hashes alike is `otherObject`; a file of another
    /// layout, geometry or a bad header CRC is `damaged`.
    static func decodeHeader(_ head: [UInt8], key: BlockKey, _ g: BlockGeometry) -> Decoded {
        guard head.count >= fixedSize, head[0..<8].elementsEqual(magic) else { return .damaged }
        let nameLen = Int(readLE(head, 8, UInt32.self)), pageSize = Int(readLE(head, 12, UInt32.self))
        let index = readLE(head, 16, UInt64.self), pagesPerBlock = Int(readLE(head, 24, UInt32.self))
        let count = Int(readLE(head, 28, UInt32.self)), rawEnd = readLE(head, 32, UInt32.self)
        guard pageSize == g.pageSize, pagesPerBlock == g.pagesPerBlock, count <= pagesPerBlock else { return .damaged }
        let bitmapStart = fixedSize + nameLen, bitmapCount = (pagesPerBlock + 7) / 8
        let crcStart = bitmapStart + bitmapCount, headerEnd = crcStart + 4 * count
        guard nameLen <= head.count, headerEnd + 4 <= head.count else {
            return nameLen == key.object.utf8.count ? .damaged : .otherObject
        }
        guard readLE(head, headerEnd, UInt32.self) == head.withUnsafeBytes({ vecgo_crc32c(0, $0.baseAddress, headerEnd) })
        else { return .damaged }
        guard index == key.index, head[fixedSize..<bitmapStart].elementsEqual(key.object.utf8) else { return .otherObject }
        let bitmap = Array(head[bitmapStart..<crcStart])
        let end: Int? = rawEnd == noEnd ? nil : Int(rawEnd)
        if let end, end > g.blockSize { return .damaged }
        let header = BlockFileHeader(geometry: g, end: end, bitmap: bitmap,
                                     crcs: (0..<count).map { readLE(head, crcStart + 4 * $0, UInt32.self) },
                                     dataStart: headerEnd + 4)
        // The counts agree, no page lies past the end, and no bit is set beyond the last page.
        guard bitmap.reduce(0, { $0 + $1.nonzeroBitCount }) == count, header.rank(pagesPerBlock) == count else {
            return .damaged
        }
        if let end, count > 0 {
            var last = pagesPerBlock - 1
            while !header.holds(last) { last -= 1 }
            if g.length(ofPage: last, end: end) == 0 { return .damaged }
        }
        return .header(header)
    }
}

func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, _: T.Type) -> T {
    var v: T = 0
    withUnsafeMutableBytes(of: &v) { dst in
        for i in 0..<dst.count { dst[i] = bytes[at + i] }
    }
    return T(littleEndian: v)
}
