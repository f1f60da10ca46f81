// FormatVersion (one wire value per version), FeatureFlags, and ObjectHeader: the header every
// Vecgo object opens with (magic, version, feature bits) and its codec.
/// The format versions of Vecgo objects. Each case has one wire value, forever.
public enum FormatVersion: UInt16, Sendable, CaseIterable {
    /// The first format: flat segments (vectors, ids, metadata, payloads), manifest, pk-index.
    case v1 = 1

    /// The version this build writes.
    public static let current = FormatVersion.v1

    /// Parses a wire value, failing with `unsupportedVersion` for versions this build cannot read.
    static func decode(_ raw: UInt16, object: String, offset: UInt64) throws(FormatError) -> FormatVersion {
        guard let v = FormatVersion(rawValue: raw) else {
            throw FormatError(.unsupportedVersion, object: object, offset: offset,
                              "format version \(raw) is not supported by this reader (it reads versions \(FormatVersion.allCases.map(\.rawValue)))")
        }
        return v
    }
}

/// Feature flags in object headers. A reader must fail on an unknown *required* flag and may
/// ignore an unknown *optional* one. Bits mean different things in different object kinds
/// (spec/format.md, "Object header"; bit `i` is value `1 << i`): segments have no required flags;
/// a manifest's required bit 0 is "pk-index layers"; a pk-index's required bit 0 is "delta layer".
/// Optional bits: segments 0 IVF, 1 HNSW, 2 IVF codes; manifests 0 live-row hints.
public struct FeatureFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Manifest, required: the pk-index is a chain of layers listed after the segments.
    public static let manifestPKIndexLayers = FeatureFlags(rawValue: 1)
    /// PK-index, required: the object is a delta layer, not a full index.
    public static let pkIndexDelta = FeatureFlags(rawValue: 1)

    /// The required flags this build understands, per object kind.
    static let knownRequiredInSegments: FeatureFlags = []
    static let knownRequiredInManifests: FeatureFlags = [.manifestPKIndexLayers]
    static let knownRequiredInPKIndexes: FeatureFlags = [.pkIndexDelta]

    static func checkRequired(_ raw: UInt32, known: FeatureFlags, object: String, offset: UInt64) throws(FormatError) {
        let unknown = raw & ~known.rawValue
        guard unknown == 0 else {
            throw FormatError(.unsupportedFeature, object: object, offset: offset,
                              "required feature flags 0x\(String(unknown, radix: 16)) are not supported by this reader")
        }
    }
}

/// The fixed 32-byte header that starts every Vecgo object (see `spec/format.md`).
struct ObjectHeader {
    static let size = 32
    var magic: [UInt8]
    var version: FormatVersion
    var requiredFeatures: UInt32 = 0
    var optionalFeatures: UInt32 = 0
    /// Object-specific word at bytes 20..<24 (the manifest's body length; 0 elsewhere).
    var word20: UInt32 = 0
    /// Object-specific word at bytes 24..<28.
    var word24: UInt32 = 0

    func encode(into w: inout ByteWriter) {
        let start = w.count
        w.write(bytes: magic)
        w.write(version.rawValue)
        w.write(UInt16(Self.size))
        w.write(requiredFeatures)
        w.write(optionalFeatures)
        w.write(word20)
        w.write(word24)
        let crc = w.bytes.withUnsafeBytes { crc32c(UnsafeRawBufferPointer(rebasing: $0[start..<start + 28])) }
        w.write(crc)
    }

    /// Reads and checks a header; a required flag outside `knownRequired` (narrowed by
    /// ``DecodingLimits/acceptedRequiredFeatures``) is `unsupportedFeature`.
    static func decode(_ r: inout ByteReader, magic expected: [UInt8], kind: String, knownRequired: FeatureFlags,
                       limits: DecodingLimits) throws(FormatError) -> ObjectHeader {
        let start = r.offset
        let raw = try r.readBytes(size, "\(kind) header")
        guard Array(raw[0..<8]) == expected else {
            throw FormatError(.corrupted, object: r.object, offset: start,
                              "not a Vecgo \(kind): bad magic")
        }
        var h = ByteReader(raw, object: r.object, baseOffset: start)
        try h.skip(8)
        let versionRaw = try h.read(UInt16.self)
        let headerLength = try h.read(UInt16.self)
        let required = try h.read(UInt32.self)
        let optional = try h.read(UInt32.self)
        let w20 = try h.read(UInt32.self)
        let w24 = try h.read(UInt32.self)
        let crc = try h.read(UInt32.self)
        guard !limits.verifyChecksums || crc == crc32c(raw[0..<28]) else {
            throw FormatError(.corrupted, object: r.object, offset: start + 28, "\(kind) header checksum mismatch")
        }
        let version = try FormatVersion.decode(versionRaw, object: r.object, offset: start + 8)
        guard headerLength == size else {
            throw FormatError(.corrupted, object: r.object, offset: start + 10, "header length \(headerLength), expected \(size)")
        }
        try FeatureFlags.checkRequired(required, known: knownRequired.intersection(limits.acceptedRequiredFeatures),
                                       object: r.object, offset: start + 12)
        return ObjectHeader(magic: expected, version: version, requiredFeatures: required,
                            optionalFeatures: optional, word20: w20, word24: w24)
    }
}
