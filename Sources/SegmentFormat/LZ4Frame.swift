// LZ4Frame: compressing and decompressing standard LZ4 frames (liblz4) for compressible sections.
internal import CLZ4

/// LZ4 frames (the standard frame format, readable by the `lz4` tool) for compressible blocks.
package enum LZ4Frame {
    /// Compresses `bytes` into one LZ4 frame with the content size recorded in the frame header.
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.contentSize = UInt64(bytes.count)
        prefs.frameInfo.blockSizeID = LZ4F_max4MB
        prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum  // the section CRC32C covers it
        let bound = LZ4F_compressFrameBound(bytes.count, &prefs)
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                LZ4F_compressFrame(dst.baseAddress, dst.count, src.baseAddress, src.count, &prefs)
            }
        }
        // Compression into a buffer of the bound's size cannot fail.
        precondition(LZ4F_isError(written) == 0, "LZ4F_compressFrame failed within its own bound")
        out.removeSubrange(written...)
        return out
    }

    /// Decompresses one LZ4 frame that must expand to exactly `expectedSize` bytes.
    ///
    /// - Throws: ``FormatError`` `.corrupted` (at `offset` in `object`) when the frame is
    ///   malformed or its content is not `expectedSize` bytes long.
    public static func decompress(_ frame: [UInt8], expectedSize: Int, object: String,
                                  offset: UInt64) throws(FormatError) -> [UInt8] {
        // LZ4 never expands data more than 255-fold: a larger declared size is damage, and
        // refusing it here keeps a damaged length from causing a huge allocation.
        guard expectedSize >= 0, expectedSize / 256 <= frame.count else {
            throw FormatError(.corrupted, object: object, offset: offset,
                              "an LZ4 frame of \(frame.count) bytes cannot expand to the declared \(expectedSize) bytes")
        }
        var dctx: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&dctx, UInt32(LZ4F_VERSION))) == 0, let dctx else {
            throw FormatError(.limitExceeded, object: object, offset: offset, "cannot allocate an LZ4 context")
        }
        defer { LZ4F_freeDecompressionContext(dctx) }
        var out = [UInt8](repeating: 0, count: expectedSize)
        var produced = 0, consumed = 0
        var finished = false
        let status: Int = out.withUnsafeMutableBytes { dst in
            frame.withUnsafeBytes { src in
                while consumed < src.count {
                    var dstSize = dst.count - produced
                    var srcSize = src.count - consumed
                    let hint = LZ4F_decompress(dctx, dst.baseAddress.map { $0 + produced }, &dstSize,
                                               src.baseAddress! + consumed, &srcSize, nil)
                    if LZ4F_isError(hint) != 0 { return -1 }
                    produced += dstSize
                    consumed += srcSize
                    if hint == 0 { finished = true; return 0 }
                    if srcSize == 0 && dstSize == 0 { return -2 }  // no progress: output full
                }
                return 0
            }
        }
        guard status == 0, finished, produced == expectedSize, consumed == frame.count else {
            throw FormatError(.corrupted, object: object, offset: offset,
                              "LZ4 frame of \(frame.count) bytes does not decode to the declared \(expectedSize) bytes")
        }
        return out
    }
}
