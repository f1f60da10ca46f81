/// A primary-key index checkpoint (the `pkindex_*.bin` object): for every live key, the
/// segment and row that hold it, plus the keys deleted since.
public struct PKIndex: Sendable, Hashable {
    /// Where one key lives.
    public struct Location: Sendable, Hashable {
        /// Index into ``PKIndex/segments``.
        public var segment: UInt32
        /// Row within that segment.
        public var row: UInt32
        public init(segment: UInt32, row: UInt32) {
            self.segment = segment
            self.row = row
        }
    }

    /// The version this checkpoint belongs to.
    public var version: UInt64
    /// Segment object names the locations refer to.
    public var segments: [String]
    /// Key to location, for every live key.
    public var entries: [UInt64: Location]
    /// Deleted keys (ascending).
    public var tombstones: [UInt64]

    public init(version: UInt64, segments: [String], entries: [UInt64: Location], tombstones: [UInt64] = []) {
        self.version = version
        self.segments = segments
        self.entries = entries
        self.tombstones = tombstones
    }

    static let magic: [UInt8] = Array("VECGOPKI".utf8)

    /// Encodes the checkpoint: a 32-byte header, one LZ4 frame of the body, and the body's CRC32C.
    /// Entries are written in ascending key order, so encoding is deterministic.
    public func encode() throws(FormatError) -> [UInt8] {
        var body = ByteWriter(capacity: entries.count * 16 + 64)
        body.write(version)
        body.write(UInt32(segments.count))
        for s in segments { try body.writeString16(s) }
        body.write(UInt64(entries.count))
        for key in entries.keys.sorted() {
            let loc = entries[key]!
            body.write(key); body.write(loc.segment); body.write(loc.row)
        }
        body.write(UInt64(tombstones.count))
        for t in tombstones { body.write(t) }
        let frame = LZ4Frame.compress(body.bytes)
        var w = ByteWriter(capacity: frame.count + 40)
        ObjectHeader(magic: Self.magic, version: .v1, word20: UInt32(frame.count), word24: UInt32(body.count)).encode(into: &w)
        w.write(bytes: frame)
        w.write(crc32c(frame))
        return w.bytes
    }

    /// Decodes and checks a checkpoint.
    public static func decode(_ bytes: [UInt8], object: String, limits: DecodingLimits = .default) throws(FormatError) -> PKIndex {
        var r = ByteReader(bytes, object: object)
        let header = try ObjectHeader.decode(&r, magic: magic, kind: "pk-index", limits: limits)
        let stored = Int(header.word20), raw = Int(header.word24)
        guard stored + 4 == r.remaining else {
            throw FormatError(stored + 4 > r.remaining ? .truncated : .corrupted, object: object, offset: 20,
                              "pk-index declares a \(stored)-byte body, \(r.remaining) bytes follow the header")
        }
        guard UInt64(raw) <= limits.maxBlockBytes else { throw FormatError(.limitExceeded, object: object, offset: 24, "pk-index body of \(raw) bytes") }
        let frame = try r.readBytes(stored, "pk-index body")
        let crc = try r.read(UInt32.self, "pk-index checksum")
        guard !limits.verifyChecksums || crc == crc32c(frame) else {
            throw FormatError(.corrupted, object: object, offset: UInt64(ObjectHeader.size + stored), "pk-index checksum mismatch")
        }
        let body = try LZ4Frame.decompress(frame, expectedSize: raw, object: object, offset: UInt64(ObjectHeader.size))
        var b = ByteReader(body, object: object + " (decompressed body)")
        let version = try b.read(UInt64.self, "version")
        let segCount = Int(try b.read(UInt32.self, "segment count"))
        guard segCount <= b.remaining / 2 else { throw b.error(.truncated, "\(segCount) segment names exceed the body") }
        var segments: [String] = []
        for _ in 0..<segCount { segments.append(try b.readString16("segment name")) }
        let count = try b.read(UInt64.self, "entry count")
        guard count <= UInt64(b.remaining / 16) else { throw b.error(.truncated, "\(count) entries exceed the body") }
        var entries = [UInt64: Location](minimumCapacity: Int(count))
        for _ in 0..<count {
            let key = try b.read(UInt64.self), seg = try b.read(UInt32.self), row = try b.read(UInt32.self)
            guard Int(seg) < segments.count else { throw b.error(.corrupted, "key \(key) refers to segment \(seg) of \(segments.count)") }
            guard entries.updateValue(Location(segment: seg, row: row), forKey: key) == nil else {
                throw b.error(.corrupted, "key \(key) appears twice")
            }
        }
        let tCount = try b.read(UInt64.self, "tombstone count")
        guard tCount <= UInt64(b.remaining / 8) else { throw b.error(.truncated, "\(tCount) tombstones exceed the body") }
        var tombstones: [UInt64] = []
        for _ in 0..<tCount { tombstones.append(try b.read(UInt64.self)) }
        try b.expectEnd("pk-index body")
        return PKIndex(version: version, segments: segments, entries: entries, tombstones: tombstones)
    }
}
