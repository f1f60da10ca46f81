// SectionDescriptor: one 40-byte entry of a segment footer's section table (kind, flags, CRC,
// offset, stored and raw lengths). Decoded with the footer, in SegmentFooter.swift.

/// Where one section lies in a segment and how to check and decode it.
package struct SectionDescriptor: Sendable, Hashable {
    static let size = 40
    /// Flag bit: the stored bytes are one LZ4 frame.
    static let flagLZ4: UInt16 = 1
    /// Flag bit: a reader that does not know this kind must refuse the segment.
    static let flagRequired: UInt16 = 2
    /// Every flag bit this build knows; another bit on a known kind is `unsupportedFeature`.
    static let knownFlags: UInt16 = flagLZ4 | flagRequired

    /// The section kind's wire value (may be one this build does not know).
    public var kind: UInt16
    /// Flag bits (LZ4, required).
    public var flags: UInt16
    /// CRC32C of the stored bytes.
    public var crc: UInt32
    /// Offset of the stored bytes in the object.
    public var offset: UInt64
    /// Length of the stored bytes.
    public var storedLength: UInt64
    /// Length after decompression (equal to `storedLength` when not compressed).
    public var rawLength: UInt64

    /// Whether the stored bytes are an LZ4 frame.
    public var isCompressed: Bool { flags & Self.flagLZ4 != 0 }
    /// The byte range of the stored section within the object.
    public var range: Range<UInt64> { offset..<offset + storedLength }
}
