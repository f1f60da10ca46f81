// CRC32C checksums of request and response bodies (`x-amz-checksum-crc32c`): what the store
// verifies on upload and what this client verifies on whole-object downloads.
internal import CVecgoNative
import Foundation

enum TransferChecksum {
    /// The header carrying a body's CRC32C.
    static let header = "x-amz-checksum-crc32c"

    /// Base64 of the big-endian CRC32C (Castagnoli) of `bytes`, as S3 sends and expects it.
    static func crc32c(_ bytes: [UInt8]) -> String {
        let crc = bytes.withUnsafeBytes { vecgo_crc32c(0, $0.baseAddress, $0.count) }
        return Data([UInt8(crc >> 24), UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 8),
                     UInt8(truncatingIfNeeded: crc)]).base64EncodedString()
    }

    /// The headers of an upload of `bytes` (PutObject, UploadPart): its checksum, and the
    /// algorithm as the SDKs name it (servers such as moto keep the checksum only then).
    static func uploadHeaders(_ bytes: [UInt8]) -> [(String, String)] {
        [(header, crc32c(bytes)), ("x-amz-sdk-checksum-algorithm", "CRC32C")]
    }

    /// Why a whole-object answer's body does not match the CRC32C it came with; nil when it
    /// matches or carries none (or a composite `…-N` checksum of a multipart object, which is
    /// not the body's).
    static func mismatch(headers: [String: String], body: [UInt8]) -> String? {
        guard let expected = headers[header], !expected.contains("-"), headers["x-amz-checksum-type"] != "COMPOSITE" else {
            return nil
        }
        let actual = crc32c(body)
        return actual == expected ? nil : "the body's CRC32C is \(actual), the store says \(expected)"
    }
}
