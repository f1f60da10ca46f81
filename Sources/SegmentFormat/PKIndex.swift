// PKIndex: a primary-key index object (a full index or a delta layer) and its codec.
/// A primary-key index object (`pkindex_*.bin`): a full index (for every live key, the segment
/// and row that hold it) or a delta layer (the keys one commit set and removed). A manifest
/// lists a chain of them, a full index then deltas; ``combine(_:segments:version:)`` reads it.
public struct PKIndex: Sendable, Hashable {
    /// What the object holds.
    public enum Kind: Sendable, Hashable {
        /// Every live key (tombstones, if any, are informational and take no part in combining).
        case full
        /// Changes on top of the layers before it (required feature flag 1): entries set keys,
        /// tombstones remove them.
        case delta
    }

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
    /// Deleted keys (ascending; in a delta strictly ascending and none of them an entry's key).
    public var tombstones: [UInt64]
    /// A full index or a delta layer.
    public var kind: Kind

    public init(version: UInt64, segments: [String], entries: [UInt64: Location], tombstones: [UInt64] = [],
                kind: Kind = .full) {
        self.version = version
        self.segments = segments
        self.entries = entries
        self.tombstones = tombstones
        self.kind = kind
    }

    static let magic: [UInt8] = Array("VECGOPKI".utf8)

    /// Encodes the object: a 32-byte header (required flag 1 for a delta), one LZ4 frame of the
    /// body, and the body's CRC32C. Entries are written in ascending key order, so encoding is
    /// deterministic.
    ///
    /// - Throws: `invalidInput` for a delta whose tombstones are not strictly ascending or name
    ///   a key it also sets.
    public func encode() throws(FormatError) -> [UInt8] {
        if kind == .delta {
            for (i, t) in tombstones.enumerated() where (i > 0 && tombstones[i - 1] >= t) || entries[t] != nil {
                throw FormatError(.invalidInput, object: "pk-index delta", offset: 0,
                                  "tombstone \(t) is out of order or also set by the delta")
            }
        }
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
        ObjectHeader(magic: Self.magic, version: .v1,
                     requiredFeatures: kind == .delta ? FeatureFlags.pkIndexDelta.rawValue : 0, word20: UInt32(frame.count), word24: UInt32(body.count)).encode(into: &w)
        w.write(bytes: frame)
        w.write(crc32c(frame))
        return w.bytes
    }

    /// Decodes and checks a full index or a delta layer.
    public static func decode(_ bytes: [UInt8], object: String, limits: DecodingLimits = .default) throws(FormatError) -> PKIndex {
        var r = ByteReader(bytes, object: object)
        let header = try ObjectHeader.decode(&r, magic: magic, kind: "pk-index",
                                            knownRequired: FeatureFlags.knownRequiredInPKIndexes, limits: limits)
        let kind: Kind = header.requiredFeatures & FeatureFlags.pkIndexDelta.rawValue != 0 ? .delta : .full
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
        var previous: UInt64?
        for _ in 0..<count {
            let at = b.offset
            let key = try b.read(UInt64.self), seg = try b.read(UInt32.self), row = try b.read(UInt32.self)
            guard Int(seg) < segments.count else { throw b.error(.corrupted, "key \(key) refers to segment \(seg) of \(segments.count)") }
            // Strictly ascending keys: no key twice, and one byte sequence per index.
            guard previous.map({ $0 < key }) ?? true else {
                throw FormatError(.corrupted, object: b.object, offset: at, "key \(key) is not above the previous key \(previous!)")
            }
            previous = key
            entries[key] = Location(segment: seg, row: row)
        }
        let tCount = try b.read(UInt64.self, "tombstone count")
        guard tCount <= UInt64(b.remaining / 8) else { throw b.error(.truncated, "\(tCount) tombstones exceed the body") }
        var tombstones: [UInt64] = []
        for _ in 0..<tCount {
            let t = try b.read(UInt64.self)
            // A delta's tombstones must be unambiguous: strictly ascending, never a key it sets.
            if kind == .delta {
                guard tombstones.last.map({ $0 < t }) ?? true else { throw b.error(.corrupted, "tombstone \(t) is out of order") }
                guard entries[t] == nil else { throw b.error(.corrupted, "key \(t) is both set and removed") }
            }
            tombstones.append(t)
        }
        try b.expectEnd("pk-index body")
        return PKIndex(version: version, segments: segments, entries: entries, tombstones: tombstones, kind: kind)
    }
}
