// CRC32C (Castagnoli), the one checksum of every Vecgo object, over the native kernels.
internal import CVecgoNative

/// CRC32C (Castagnoli) of `bytes`, continuing from `seed`: the one checksum of every Vecgo object.
package func crc32c(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    vecgo_crc32c(seed, bytes.baseAddress, bytes.count)
}

/// CRC32C (Castagnoli) of `bytes`, continuing from `seed`.
package func crc32c(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { crc32c($0, seed: seed) }
}

/// CRC32C (Castagnoli) of `bytes`, continuing from `seed`.
package func crc32c(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { crc32c($0, seed: seed) }
}
