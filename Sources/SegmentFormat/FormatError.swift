// FormatError, the one error of the format module (object, offset, code), and DecodingLimits,
// the bounds every decoder checks before it allocates.
/// The one error type of `SegmentFormat`: an object that cannot be decoded. It names the object
/// and the byte offset where decoding failed. Match on ``code``; the message may change.
public struct FormatError: Error, Sendable, CustomStringConvertible {
    /// Why the bytes were rejected.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: Hashable, Sendable { case corrupted, truncated, unsupportedVersion, unsupportedFeature, limitExceeded, invalidInput }
        let value: Value
        /// A checksum, magic or structural check failed: the object is damaged. Give up.
        public static let corrupted = Code(value: .corrupted)
        /// The object ends before a structure it declares: damaged or cut short. Give up.
        public static let truncated = Code(value: .truncated)
        /// Written by a format version this reader does not know. Upgrade Vecgo.
        public static let unsupportedVersion = Code(value: .unsupportedVersion)
        /// Uses a required feature this reader does not know. Upgrade Vecgo.
        public static let unsupportedFeature = Code(value: .unsupportedFeature)
        /// Declares a size beyond the decoding limits (``DecodingLimits``): refused before allocating.
        public static let limitExceeded = Code(value: .limitExceeded)
        /// The content handed to an encoder is not encodable (for example a vector of the wrong length).
        public static let invalidInput = Code(value: .invalidInput)
        public var description: String { "\(value)" }
    }

    /// Why the bytes were rejected.
    public var code: Code
    /// The object being decoded (for example `segment_0001.bin`).
    public var object: String
    /// The byte offset within the object where the problem was found.
    public var offset: UInt64
    /// A message for people.
    public var message: String

    public init(_ code: Code, object: String, offset: UInt64, _ message: String) {
        self.code = code
        self.object = object
        self.offset = offset
        self.message = message
    }

    public var description: String { "FormatError.\(code) in '\(object)' at offset \(offset): \(message)" }
}

/// Limits every decoder checks declared sizes against before allocating anything, so a damaged
/// or hostile object can never make a reader allocate without bound.
public struct DecodingLimits: Sendable, Hashable {
    /// The largest vector dimension accepted.
    public var maxDimension: Int = 65_536
    /// The most rows one segment may declare.
    public var maxRows: UInt64 = 1 << 32
    /// The most sections one segment footer may declare.
    public var maxSections: Int = 1_024
    /// The largest decompressed size of one block, in bytes.
    public var maxBlockBytes: UInt64 = 4 << 30
    /// The most segments one manifest may list.
    public var maxSegments: Int = 1 << 20
    /// Whether checksums are verified. Only the fuzz harnesses turn this off, to reach the
    /// structure behind the checksums; structural checks stay on either way.
    @_spi(Fuzzing) public var verifyChecksums = true
    /// The required feature flags this decoder accepts, of those this build knows for each
    /// object kind. Tests clear bits to decode as a reader from before a flag existed would
    /// (`[]`: a v1 reader that knows no required flag) and see it refuse the object.
    @_spi(Testing) public var acceptedRequiredFeatures: FeatureFlags = FeatureFlags(rawValue: .max)
    /// The most layers one manifest's pk-index chain may list.
    public var maxPKIndexLayers: Int = 1_024

    public init() {}
    /// The defaults.
    public static let `default` = DecodingLimits()
}
