// Manifest: the object that names one version of a database (parent, writer, dimension, next id,
// its segments as SegmentRefs and its pk-index chain as PKIndexLayers), and its codec.
/// One live segment as the manifest records it: enough to reach its footer with one ranged read.
public struct SegmentRef: Sendable, Hashable {
    /// The object name (for example `segment_<writer>-<seq>.bin`).
    public var name: String
    /// The object's size in bytes.
    public var size: UInt64
    /// Offset of the segment's tail: its IVF sections (when present), footer and trailer.
    public var tailOffset: UInt64
    /// Bytes from `tailOffset` to the end of the object.
    public var tailLength: UInt32
    /// Rows in the segment.
    public var rowCount: UInt64
    /// The smallest and largest primary key in the segment (both 0 when empty).
    public var minID: UInt64
    public var maxID: UInt64
    /// Rows of the segment that are not live in this version (superseded or deleted), when the
    /// manifest records it (optional feature "live-row hints"; saturates at 2³² − 1). 0 means
    /// every row is live, so a reader needs no pk-index for it; nil means unknown.
    public var deadRows: UInt64?

    public init(name: String, size: UInt64, tailOffset: UInt64, tailLength: UInt32, rowCount: UInt64,
                minID: UInt64, maxID: UInt64, deadRows: UInt64? = nil) {
        self.name = name
        self.size = size
        self.tailOffset = tailOffset
        self.tailLength = tailLength
        self.rowCount = rowCount
        self.minID = minID
        self.maxID = maxID
        self.deadRows = deadRows
    }
}

/// One layer of a manifest's pk-index chain.
public struct PKIndexLayer: Sendable, Hashable {
    /// The object name (`pkindex_….bin`).
    public var name: String
    /// The object's size in bytes.
    public var size: UInt64
    public init(name: String, size: UInt64) {
        self.name = name
        self.size = size
    }
}

/// A committed version of a database (the `MANIFEST-<version>.bin` object).
public struct Manifest: Sendable, Hashable {
    /// This version's number (1 for the first commit).
    public var version: UInt64
    /// The version this one was built on (0 for the first).
    public var parentVersion: UInt64
    /// Commit time, microseconds since the Unix epoch.
    public var commitTimeMicros: Int64
    /// The committing writer's epoch (fencing of older writers).
    public var writerEpoch: UInt64
    /// The committing writer's identity.
    public var writerID: String
    /// Floats per vector.
    public var dimension: Int
    /// The metric's wire code (1 L2, 2 cosine, 3 inner product).
    public var metric: UInt8
    /// The next generated primary key.
    public var nextID: UInt64
    /// The primary-key index object of this version ("" when the database is empty): the only
    /// one, a full index, or the newest layer of a chain (``pkIndexBaseLayers``).
    public var pkIndexObject: String
    /// Size of the primary-key index object.
    public var pkIndexSize: UInt64
    /// The live segments.
    public var segments: [SegmentRef]
    /// The pk-index layers older than ``pkIndexObject``, oldest first: a full index, then
    /// deltas (required feature "pk-index layers"). Empty when the pk-index is one full index.
    public var pkIndexBaseLayers: [PKIndexLayer]

    public init(version: UInt64, parentVersion: UInt64, commitTimeMicros: Int64, writerEpoch: UInt64,
                writerID: String, dimension: Int, metric: UInt8, nextID: UInt64, pkIndexObject: String,
                pkIndexSize: UInt64, segments: [SegmentRef], pkIndexBaseLayers: [PKIndexLayer] = []) {
        self.version = version
        self.parentVersion = parentVersion
        self.commitTimeMicros = commitTimeMicros
        self.writerEpoch = writerEpoch
        self.writerID = writerID
        self.dimension = dimension
        self.metric = metric
        self.nextID = nextID
        self.pkIndexObject = pkIndexObject
        self.pkIndexSize = pkIndexSize
        self.segments = segments
        self.pkIndexBaseLayers = pkIndexBaseLayers
    }

    /// Every pk-index layer of this version, oldest (the full index) first, newest last; empty
    /// when there is no pk-index.
    public var pkIndexLayers: [PKIndexLayer] {
        pkIndexObject.isEmpty ? [] : pkIndexBaseLayers + [PKIndexLayer(name: pkIndexObject, size: pkIndexSize)]
    }

    /// What every manifest object name starts with (the prefix to list them by).
    public static let objectNamePrefix = "MANIFEST-"

    /// The object name of a version's manifest: `MANIFEST-` and the version in 20 digits. The
    /// one definition of manifest names: the engine and `Stores`' DynamoDB commit store use it.
    public static func objectName(version: UInt64) -> String {
        let digits = String(version)
        return objectNamePrefix + String(repeating: "0", count: 20 - digits.count) + digits + ".bin"
    }

    /// The version a manifest object name denotes, or nil when the name is not a manifest's.
    public static func version(fromObjectName name: String) -> UInt64? {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        guard base.hasPrefix(objectNamePrefix), base.hasSuffix(".bin") else { return nil }
        let digits = base.dropFirst(objectNamePrefix.count).dropLast(4)
        guard digits.count == 20, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return UInt64(digits)
    }

    static let magic: [UInt8] = Array("VECGOMAN".utf8)

    /// Optional feature bit 0 (value 1): each segment entry's formerly reserved u32 holds its dead-row
    /// count. Readers that do not know it ignore the bit and the field (v1 readers skip it).
    public static let liveRowHints: UInt32 = 1

    /// Whether every segment records its dead-row count (the flag is written then).
    var hasLiveRowHints: Bool { !segments.isEmpty && segments.allSatisfy { $0.deadRows != nil } }

    /// Encodes this manifest (spec/format.md, "Manifest"). Without ``pkIndexBaseLayers`` the
    /// bytes are those of a manifest written before layers existed.
    ///
    /// - Throws: `invalidInput` for older layers without a newest one, `corrupted` for a
    ///   segment with more dead rows than rows.
    public func encode() throws(FormatError) -> [UInt8] {
        let layered = !pkIndexBaseLayers.isEmpty
        if layered && pkIndexObject.isEmpty {
            throw FormatError(.invalidInput, object: Self.objectName(version: version), offset: 0,
                              "\(pkIndexBaseLayers.count) older pk-index layers but no newest one")
        }
        if layered, Set(pkIndexLayers.map(\.name)).count != pkIndexBaseLayers.count + 1 || pkIndexBaseLayers.contains(where: \.name.isEmpty) {
            throw FormatError(.invalidInput, object: Self.objectName(version: version), offset: 0,
                              "a pk-index layer name is empty or listed twice")
        }
        var body = ByteWriter()
        body.write(version)
        body.write(parentVersion)
        body.write(commitTimeMicros)
        body.write(writerEpoch)
        try body.writeString16(writerID)
        body.write(UInt32(dimension))
        body.write(metric)
        body.write(bytes: [0, 0, 0])
        body.write(nextID)
        try body.writeString16(pkIndexObject)
        body.write(pkIndexSize)
        body.write(UInt32(segments.count))
        let hints = hasLiveRowHints
        for s in segments {
            if let dead = s.deadRows, dead > s.rowCount {
                throw FormatError(.corrupted, object: s.name, offset: 0, "segment '\(s.name)' cannot have \(dead) dead rows of \(s.rowCount)")
            }
            try body.writeString16(s.name)
            body.write(s.size)
            body.write(s.tailOffset)
            body.write(s.tailLength)
            body.write(hints ? UInt32(min(s.deadRows!, UInt64(UInt32.max))) : 0)
            body.write(s.rowCount)
            body.write(s.minID)
            body.write(s.maxID)
        }
        if layered {
            body.write(UInt32(pkIndexBaseLayers.count))
            for l in pkIndexBaseLayers {
                try body.writeString16(l.name)
                body.write(l.size)
            }
        }
        var w = ByteWriter(capacity: body.count + 40)
        ObjectHeader(magic: Self.magic, version: .v1,
                     requiredFeatures: layered ? FeatureFlags.manifestPKIndexLayers.rawValue : 0,
                     optionalFeatures: hints ? Self.liveRowHints : 0,
                     word20: UInt32(body.count)).encode(into: &w)
        w.write(bytes: body.bytes)
        w.write(crc32c(w.bytes))
        return w.bytes
    }

    /// Decodes and checks a manifest object.
    public static func decode(_ bytes: [UInt8], object: String, limits: DecodingLimits = .default) throws(FormatError) -> Manifest {
        var r = ByteReader(bytes, object: object)
        let header = try ObjectHeader.decode(&r, magic: magic, kind: "manifest",
                                            knownRequired: FeatureFlags.knownRequiredInManifests, limits: limits)
        let bodyLength = Int(header.word20)
        guard bodyLength + 4 == r.remaining else {
            throw FormatError(bodyLength + 4 > r.remaining ? .truncated : .corrupted, object: object, offset: 20,
                              "manifest declares a \(bodyLength)-byte body, \(r.remaining) bytes follow the header")
        }
        let crcAt = bytes.count - 4
        var c = ByteReader(Array(bytes[crcAt...]), object: object, baseOffset: UInt64(crcAt))
        guard try c.read(UInt32.self) == crc32c(bytes[..<crcAt]) || !limits.verifyChecksums else {
            throw FormatError(.corrupted, object: object, offset: UInt64(crcAt), "manifest checksum mismatch")
        }
        let version = try r.read(UInt64.self, "version")
        let parent = try r.read(UInt64.self, "parent version")
        let time = try r.read(Int64.self, "commit time")
        let epoch = try r.read(UInt64.self, "writer epoch")
        let writer = try r.readString16("writer id")
        let dimension = Int(try r.read(UInt32.self, "dimension"))
        guard dimension >= 1, dimension <= limits.maxDimension else {
            throw r.error(.limitExceeded, "dimension \(dimension) is outside 1...\(limits.maxDimension)")
        }
        let metric = try r.read(UInt8.self, "metric")
        guard (1...3).contains(metric) else { throw r.error(.corrupted, "unknown metric code \(metric)") }
        try r.expectZero(3, "manifest reserved bytes")
        let nextID = try r.read(UInt64.self, "next id")
        let pk = try r.readString16("pk-index object")
        let pkSize = try r.read(UInt64.self, "pk-index size")
        let count = Int(try r.read(UInt32.self, "segment count"))
        guard count <= limits.maxSegments, count <= r.remaining / 50 else {
            throw r.error(count > limits.maxSegments ? .limitExceeded : .truncated, "\(count) segments cannot fit the manifest")
        }
        var segments: [SegmentRef] = []
        segments.reserveCapacity(count)
        for _ in 0..<count {
            let name = try r.readString16("segment name")
            let size = try r.read(UInt64.self)
            let tailOffset = try r.read(UInt64.self)
            let tail = try r.read(UInt32.self)
            let dead = try r.read(UInt32.self)  // reserved (0) unless live-row hints are on
            let rows = try r.read(UInt64.self)
            let minID = try r.read(UInt64.self), maxID = try r.read(UInt64.self)
            guard tailOffset <= size, size - tailOffset == UInt64(tail), tail >= UInt32(SegmentTrailer.size) else {
                throw r.error(.corrupted, "segment '\(name)' tail \(tailOffset)+\(tail) does not end at its size \(size)")
            }
            let hints = header.optionalFeatures & Self.liveRowHints != 0
            guard hints ? UInt64(dead) <= rows : dead == 0 else {
                throw FormatError(.corrupted, object: object, offset: r.offset - 28,
                                  hints ? "segment '\(name)' has \(dead) dead rows of \(rows)"
                                        : "segment '\(name)' records \(dead) dead rows but the live-row hints bit is clear")
            }
            segments.append(SegmentRef(name: name, size: size, tailOffset: tailOffset, tailLength: tail,
                                       rowCount: rows, minID: minID, maxID: maxID, deadRows: hints ? UInt64(dead) : nil))
        }
        var layers: [PKIndexLayer] = []
        if header.requiredFeatures & FeatureFlags.manifestPKIndexLayers.rawValue != 0 {
            let layerCount = Int(try r.read(UInt32.self, "pk-index layer count"))
            guard layerCount <= limits.maxPKIndexLayers, layerCount <= r.remaining / 10 else {
                throw r.error(layerCount > limits.maxPKIndexLayers ? .limitExceeded : .truncated,
                              "\(layerCount) pk-index layers cannot fit the manifest")
            }
            guard layerCount >= 1, !pk.isEmpty else {
                throw r.error(.corrupted, "the pk-index layers flag needs a newest layer and at least one older one")
            }
            var names: Set<String> = [pk]
            for _ in 0..<layerCount {
                let name = try r.readString16("pk-index layer name")
                let size = try r.read(UInt64.self, "pk-index layer size")
                guard !name.isEmpty, names.insert(name).inserted else {
                    throw r.error(.corrupted, "pk-index layer '\(name)' is empty or listed twice")
                }
                layers.append(PKIndexLayer(name: name, size: size))
            }
        }
        try r.skip(4)  // the CRC, checked above
        try r.expectEnd("manifest")
        return Manifest(version: version, parentVersion: parent, commitTimeMicros: time, writerEpoch: epoch,
                        writerID: writer, dimension: dimension, metric: metric, nextID: nextID,
                        pkIndexObject: pk, pkIndexSize: pkSize, segments: segments, pkIndexBaseLayers: layers)
    }
}
