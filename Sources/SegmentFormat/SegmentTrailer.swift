// SegmentTrailer: the fixed 32 bytes that end every segment and say where its footer is, and
// their decoder.

/// The fixed 32-byte trailer at the end of every segment: where the footer is.
package struct SegmentTrailer: Sendable, Hashable {
    /// The trailer's size in bytes.
    public static let size = 32
    static let magic: [UInt8] = Array("VGSEGEND".utf8)

    /// Offset of the footer in the object.
    public var footerOffset: UInt64
    /// Length of the footer in bytes.
    public var footerLength: UInt32
    /// CRC32C of the footer bytes.
    public var footerCRC: UInt32

    /// Decodes the last 32 bytes of a segment of `objectSize` bytes. A reader that has read the
    /// header passes its version as `headerVersion`: a trailer naming another version is corrupt.
    public static func decode(_ bytes: [UInt8], object: String, objectSize: UInt64, headerVersion: UInt16? = nil,
                              limits: DecodingLimits = .default) throws(FormatError) -> SegmentTrailer {
        let start = objectSize >= UInt64(size) ? objectSize - UInt64(size) : 0
        guard bytes.count == size else {
            throw FormatError(.truncated, object: object, offset: start, "segment of \(objectSize) bytes is too short for its trailer")
        }
        var r = ByteReader(bytes, object: object, baseOffset: start)
        let footerOffset = try r.read(UInt64.self)
        let footerLength = try r.read(UInt32.self)
        let footerCRC = try r.read(UInt32.self)
        let version = try r.read(UInt16.self)
        let reserved = try r.read(UInt16.self)
        let trailerCRC = try r.read(UInt32.self)
        guard Array(bytes[24..<32]) == magic else {
            throw FormatError(.corrupted, object: object, offset: start + 24, "bad segment trailer magic")
        }
        guard !limits.verifyChecksums || trailerCRC == crc32c(bytes[0..<20]), reserved == 0 else {
            throw FormatError(.corrupted, object: object, offset: start + 20, "segment trailer checksum mismatch")
        }
        if let headerVersion, version != headerVersion {
            throw FormatError(.corrupted, object: object, offset: start + 16,
                              "trailer format version \(version) differs from the header's \(headerVersion)")
        }
        _ = try FormatVersion.decode(version, object: object, offset: start + 16)
        guard footerOffset >= UInt64(ObjectHeader.size), footerOffset <= start,
              start - footerOffset == UInt64(footerLength) else {
            throw FormatError(.corrupted, object: object, offset: start,
                              "footer at \(footerOffset)+\(footerLength) does not end where the trailer starts (\(start))")
        }
        return SegmentTrailer(footerOffset: footerOffset, footerLength: footerLength, footerCRC: footerCRC)
    }
}
