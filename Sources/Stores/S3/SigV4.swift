// S3Credentials and SigV4: AWS Signature Version 4 signing of requests.
public import Foundation

/// AWS credentials. Their description never shows the secret or the session token.
public struct S3Credentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The access key id (not secret).
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials.
    public var sessionToken: String?
    /// When temporary credentials stop working; nil for long-term keys.
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String {
        "S3Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }
    public var debugDescription: String { description }
    /// Reflection (`dump`, default descriptions of containing types) shows the redacted form.
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

/// Signature Version 4 (AWS4-HMAC-SHA256), as a pure function of the request: no clock, no network.
struct SigV4 {
    var credentials: S3Credentials
    var region: String
    var service: String

    /// Characters SigV4 leaves unencoded.
    static func isUnreserved(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
            || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E
    }

    /// Percent-encodes UTF-8 bytes; `/` is kept when `keepSlash` (object key paths).
    static func encode(_ s: String, keepSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        for b in s.utf8 {
            if isUnreserved(b) || (keepSlash && b == 0x2F) {
                out.append(b)
            } else {
                out += [0x25, hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The query string in canonical form: encoded keys and values, sorted.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(String, String)] = query.map { (encode($0.0, keepSlash: false), encode($0.1, keepSlash: false)) }
        let sorted = encoded.sorted { (a: (String, String), b: (String, String)) -> Bool in
            a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
        }
        return sorted.map { (pair: (String, String)) -> String in pair.0 + "=" + pair.1 }.joined(separator: "&")
    }

    /// Signs a request: returns the `Authorization` header value. `headers` must already hold
    /// `host`, `x-amz-date`, and (for S3) `x-amz-content-sha256`; all of them are signed.
    /// `path` is the already-encoded canonical URI.
    func authorization(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                       payloadHash: String, amzDate: String) -> String {
        let normalized = headers.map { ($0.0.lowercased(), $0.1.trimmingSpaces) }.sorted { $0.0 < $1.0 }
        let signedHeaders = normalized.map(\.0).joined(separator: ";")
        let canonicalRequest = [
            method, path, Self.canonicalQuery(query),
            normalized.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope,
                            Crypto.hex(Crypto.sha256(Array(canonicalRequest.utf8)))].joined(separator: "\n")
        var key = Crypto.hmacSHA256(key: Array(("AWS4" + credentials.secretAccessKey).utf8), Array(date.utf8))
        for part in [region, service, "aws4_request"] { key = Crypto.hmacSHA256(key: key, Array(part.utf8)) }
        let signature = Crypto.hex(Crypto.hmacSHA256(key: key, Array(stringToSign.utf8)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` for a time in seconds since the Unix epoch.
    static func amzDate(epochSeconds: Int) -> String {
        // Civil-from-days (Howard Hinnant's algorithm), so no Foundation date formatting is needed.
        let days = epochSeconds / 86_400, secs = epochSeconds % 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)\(two(m))\(two(d))T\(two(secs / 3600))\(two(secs % 3600 / 60))\(two(secs % 60))Z"
    }
}

extension String {
    /// Leading and trailing spaces removed and inner runs of spaces folded, as SigV4 wants header values.
    var trimmingSpaces: String {
        split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
