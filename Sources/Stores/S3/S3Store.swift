// S3Store: the BlobStore on S3 and S3-compatible servers: addressing, signed requests and their
// errors, ranged and split reads, PUT and conditional PUT, DELETE, HEAD, bucket creation.
// Multipart uploads are in S3MultipartUpload.swift, listing in S3Listing.swift.
import Foundation

/// A ``BlobStore`` on S3 or any S3-compatible server, over libcurl with SigV4 signing.
///
/// Ranged GET, PUT, conditional PUT (`If-None-Match: *`, 412 → `.alreadyExists`),
/// ListObjectsV2 with pagination, DELETE and HEAD; retries in the SDKs' standard mode, with
/// per-operation-class budgets (``RetryConfiguration``).
///
/// Uploads (PutObject, UploadPart, conditional PUTs) carry `x-amz-checksum-crc32c`, so the
/// store refuses a body damaged on the way (`BadDigest`, retried). Whole-object GETs ask for
/// the object's checksum (`x-amz-checksum-mode: ENABLED`) and, when the answer has a
/// whole-object CRC32C, check the body against it; a mismatch is retried like a 5xx.
public final class S3Store: BlobStore, CustomStringConvertible {
    /// The configuration (its description hides secrets).
    public let configuration: S3Configuration
    private let transport: AWSTransport
    /// The path every request starts with: `/bucket` (path-style) or empty (virtual-hosted).
    private let pathPrefix: String
    /// A directory bucket (S3 Express): listings take whole-directory prefixes only, come
    /// unsorted, and have no start-after.
    let directoryBucket: Bool

    /// Creates a store. No request is made.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` for an empty bucket, a malformed endpoint or
    ///   an unusable retry configuration.
    public convenience init(_ configuration: S3Configuration) throws {
        try self.init(configuration, express: nil)
    }

    /// A store whose requests are signed for `express` (an S3 Express directory bucket's
    /// zonal endpoint and session credentials) when given.
    init(_ configuration: S3Configuration, express: (host: String, scheme: String, session: ExpressSessions)?) throws {
        guard !configuration.bucket.isEmpty, !configuration.bucket.contains("/") else {
            throw StoreError(.invalidArgument, "'\(configuration.bucket)' is not a bucket name")
        }
        try configuration.retry.validate()
        try AWSTransport.validateTimeouts(connect: configuration.connectTimeoutSeconds, request: configuration.requestTimeoutSeconds,
                                          stall: configuration.stallTimeoutSeconds)
        self.configuration = configuration
        let scheme: String, host: String
        if let express {
            (scheme, host) = (express.scheme, express.host)
        } else if let endpoint = configuration.endpoint {
            (scheme, host) = try AWSTransport.parseEndpoint(endpoint)
        } else {
            (scheme, host) = ("https", "s3.\(configuration.region).amazonaws.com")
        }
        let bucketHost: String
        (bucketHost, pathPrefix) = Self.address(configuration, host: host)
        directoryBucket = express != nil
        if let express {
            transport = AWSTransport(scheme: scheme, host: bucketHost, region: configuration.region, service: "s3express",
                                     credentials: express.session, retry: configuration.retry,
                                     connectTimeoutSeconds: configuration.connectTimeoutSeconds,
                                     requestTimeoutSeconds: configuration.requestTimeoutSeconds,
                                     stallTimeoutSeconds: configuration.stallTimeoutSeconds, caBundlePath: configuration.caBundlePath,
                                     tokenHeader: "x-amz-s3session-token",
                                     credentialsExpired: { [session = express.session] in await session.renew(replacing: $0) })
        } else {
            transport = AWSTransport(scheme: scheme, host: bucketHost, region: configuration.region, service: "s3",
                                     credentials: configuration.credentialsProvider ?? StaticCredentials(configuration.credentials),
                                     retry: configuration.retry,
                                     connectTimeoutSeconds: configuration.connectTimeoutSeconds,
                                     requestTimeoutSeconds: configuration.requestTimeoutSeconds,
                                     stallTimeoutSeconds: configuration.stallTimeoutSeconds, caBundlePath: configuration.caBundlePath)
        }
    }

    /// The host a bucket's requests go to and the path they start with: `bucket.host` and ""
    /// (virtual-hosted), or `host` and `/bucket` (path-style).
    static func address(_ configuration: S3Configuration, host: String) -> (host: String, pathPrefix: String) {
        switch configuration.addressing {
        case .pathStyle: (host, "/" + SigV4.encode(configuration.bucket, keepSlash: false))
        case .virtualHosted: ("\(configuration.bucket).\(host)", "")
        }
    }

    public var description: String {
        "S3Store(bucket: \(configuration.bucket), prefix: \(configuration.prefix), endpoint: \(configuration.endpoint ?? "AWS"))"
    }

    // MARK: requests

    typealias Answer = AWSTransport.Answer

    /// Sends a signed request with retries. `key` is the full object key (prefix included), nil
    /// for bucket-level requests. Returns the final answer; the caller maps non-2xx statuses.
    func send(_ method: String, _ operation: StoreOperationClass, key: String?, query: [(String, String)] = [],
              headers: [(String, String)] = [], body: [UInt8] = [], object: String?,
              verify: ((Answer) -> String?)? = nil) async throws -> Answer {
        let path = pathPrefix + (key.map { "/" + SigV4.encode($0, keepSlash: true) } ?? "/")
        return try await transport.send(method, operation, path: path, query: query, headers: headers, body: body, object: object,
                                        verify: verify)
    }

    /// The error for a final non-2xx answer.
    func failure(_ a: Answer, _ operation: String, object: String) -> StoreError {
        let scanner = XMLScanner(a.body)
        let message = scanner.first("Message") ?? "HTTP \(a.status)"
        let requestID = scanner.first("RequestId") ?? a.headers["x-amz-request-id"]
        let code: StoreError.Code = switch a.status {
        case _ where a.code.map(AWSTransport.expiredCredentialCodes.contains) ?? false: .accessDenied
        case 404: .notFound
        case 401, 403: .accessDenied
        case 412: .alreadyExists
        case 409: .conflict
        case 429, 500...599: .throttled
        default: .invalidArgument
        }
        return StoreError(code, "\(operation) '\(object)' in bucket '\(configuration.bucket)': \(message)", object: object,
                          httpStatus: a.status, serviceCode: a.code, requestID: requestID)
    }

    func key(_ name: String) throws -> String {
        try validateObjectName(name)
        return configuration.prefix + name
    }

    // MARK: BlobStore

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        guard !range.isEmpty else { return [] }
        let part = UInt64(max(1 << 20, configuration.parallelReadPartSize))
        if range.upperBound != .max, range.upperBound - range.lowerBound > part {
            return try await readInParts(name, range, part: part)
        }
        let whole = range == 0..<UInt64.max
        let headers = whole ? [("x-amz-checksum-mode", "ENABLED")] : [("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")]
        // Only a whole object's checksum covers the body (S3 sends none for ranges).
        let verify: ((Answer) -> String?)? = whole ? { a in
            a.status == 200 ? TransferChecksum.mismatch(headers: a.headers, body: a.body) : nil
        } : nil
        let a = try await send("GET", .read, key: try key(name), headers: headers, object: name, verify: verify)
        if a.status == 416 { return [] }  // the range starts at or past the end
        guard a.status == 200 || a.status == 206 else { throw failure(a, "GET", object: name) }
        if a.status == 200 && range != 0..<UInt64.max {
            return clip(a.body, range)  // a server that ignores Range sends everything
        }
        return a.body
    }

    /// A large range as parallel ranged GETs of `part` bytes (`multipartConcurrency` at a
    /// time), joined in order; clipped at the object's end like one GET.
    private func readInParts(_ name: String, _ range: Range<UInt64>, part: UInt64) async throws -> [UInt8] {
        let starts = Array(stride(from: range.lowerBound, to: range.upperBound, by: Int(part)))
        var pieces = [[UInt8]](repeating: [], count: starts.count)
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            var next = 0
            func startNext() {
                let i = next
                next += 1
                let lo = starts[i], hi = min(lo + part, range.upperBound)
                group.addTask { (i, try await self.read(name, range: lo..<hi)) }
            }
            for _ in 0..<min(max(1, configuration.multipartConcurrency), starts.count) { startNext() }
            while let (i, bytes) = try await group.next() {
                pieces[i] = bytes
                if next < starts.count { startNext() }
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(pieces.reduce(0) { $0 + $1.count })
        for p in pieces {
            out += p
            if p.count < Int(part) { break }  // the object ended here
        }
        return out
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        if bytes.count >= configuration.multipartThreshold { return try await multipartUpload(name, bytes, ifAbsent: false) }
        let a = try await send("PUT", .write, key: try key(name), headers: TransferChecksum.uploadHeaders(bytes), body: bytes,
                            object: name)
        guard (200..<300).contains(a.status) else { throw failure(a, "PUT", object: name) }
    }

    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        if bytes.count >= configuration.multipartThreshold { return try await multipartUpload(name, bytes, ifAbsent: true) }
        let a = try await send("PUT", .conditionalWrite, key: try key(name),
                            headers: [("if-none-match", "*")] + TransferChecksum.uploadHeaders(bytes), body: bytes, object: name)
        guard (200..<300).contains(a.status) else { throw failure(a, "conditional PUT", object: name) }
    }

    public func delete(_ name: String) async throws {
        let a = try await send("DELETE", .write, key: try key(name), object: name)
        guard (200..<300).contains(a.status) || a.status == 404 else { throw failure(a, "DELETE", object: name) }
    }

    public func size(_ name: String) async throws -> UInt64 {
        if directoryBucket { return try await sizeByRangedGET(name) }
        let a = try await send("HEAD", .read, key: try key(name), object: name)
        guard a.status == 200 else { throw failure(a, "HEAD", object: name) }
        guard let length = a.headers["content-length"].flatMap(UInt64.init) else {
            throw StoreError(.invalidResponse, "HEAD answered without Content-Length", object: name)
        }
        return length
    }

    /// The CRC32C (base64, `x-amz-checksum-crc32c`) the store keeps for an object: a
    /// composite `…-N` one for multipart objects, nil when it keeps none.
    ///
    /// - Throws: ``StoreError`` `.notFound`, or what a failed HEAD throws.
    package func storedCRC32C(_ name: String) async throws -> String? {
        let a = try await send("HEAD", .read, key: try key(name), headers: [("x-amz-checksum-mode", "ENABLED")], object: name)
        guard a.status == 200 else { throw failure(a, "HEAD", object: name) }
        return a.headers[TransferChecksum.header]
    }

    /// The size from a one-byte ranged GET's `Content-Range` (`bytes 0-0/<size>`, or
    /// `bytes */0` for an empty object). Unlike HEAD, its errors have a body, so an expired
    /// S3 Express session is recognised and renewed.
    private func sizeByRangedGET(_ name: String) async throws -> UInt64 {
        let a = try await send("GET", .read, key: try key(name), headers: [("range", "bytes=0-0")], object: name)
        guard a.status == 206 || a.status == 416 || a.status == 200 else { throw failure(a, "GET", object: name) }
        if a.status == 200 { return UInt64(a.body.count) }  // a server that ignores Range
        guard let total = a.headers["content-range"]?.split(separator: "/").last.flatMap({ UInt64($0) }) else {
            throw StoreError(.invalidResponse, "a ranged GET answered without a usable Content-Range", object: name)
        }
        return total
    }

    /// Creates the bucket; an existing bucket owned by the caller is fine.
    public func createBucketIfNeeded() async throws {
        let body: [UInt8] = configuration.region == "us-east-1" ? [] : Array("""
            <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
            <LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>
            """.utf8)
        let a = try await send("PUT", .write, key: nil, body: body, object: configuration.bucket)
        if (200..<300).contains(a.status) || a.code == "BucketAlreadyOwnedByYou" { return }
        throw failure(a, "CREATE BUCKET", object: configuration.bucket)
    }
}
