// SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto, for SigV4.
internal import COpenSSL

/// SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto: the only crypto SigV4 needs.
enum Crypto {
    static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBytes { src in out.withUnsafeMutableBytes { vecgo_sha256(src.baseAddress, src.count, $0.baseAddress) } }
        return out
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBytes { vecgo_hmac_sha256(k.baseAddress, Int32(k.count), d.baseAddress, d.count, $0.baseAddress) }
            }
        }
        precondition(ok == 1, "HMAC-SHA256 failed in libcrypto")
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex SHA-256 of the empty string: the payload hash of requests without a body.
    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
