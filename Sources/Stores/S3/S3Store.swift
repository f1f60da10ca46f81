import Foundation

/// Where an S3 store's objects live and how to reach them.
public struct S3Configuration: Sendable {
    /// How the bucket appears in URLs.
    public enum Addressing: Sendable, Hashable {
        /// `https://bucket.s3.region.amazonaws.com/key` (or `bucket.<endpoint host>`).
        case virtualHosted
        /// `https://endpoint/bucket/key`: MinIO, moto and most S3-compatible servers.
        case pathStyle
    }

    /// The bucket.
    public var bucket: String
    /// The prefix all object names are under: empty, or ending in `/`.
    public var prefix: String
    /// The signing region.
    public var region: String
    /// An endpoint override (`http://127.0.0.1:9000`); nil for AWS.
    public var endpoint: String?
    /// URL style; path-style by default when an endpoint is given.
    public var addressing: Addressing
    /// The credentials requests are signed with, when no ``credentialsProvider`` is set.
    public var credentials: S3Credentials
    /// Where credentials come from (asked before each request; cache in the provider); when
    /// set, ``credentials`` is ignored.
    public var credentialsProvider: (any CredentialsProvider)?
    /// How often and for how long requests are retried, per operation class (reads, writes,
    /// conditional writes, listings); see ``RetryConfiguration`` for the defaults.
    public var retry = RetryConfiguration()
    /// Attempts per request, retries included, for every operation class: setting it sets
    /// each class's ``RetryConfiguration/Budget/attempts``; reading it gives the reads'.
    public var maxAttempts: Int {
        get { retry.reads.attempts }
        set { retry.setAttempts(newValue) }
    }
    /// Time allowed for connecting, in seconds.
    public var connectTimeoutSeconds = 5.0
    /// Time allowed for a whole request, in seconds.
    public var requestTimeoutSeconds = 60.0
    /// A PEM file of certificates to trust instead of the system's (a server with a private
    /// CA). TLS certificates and host names are always verified.
    public var caBundlePath: String?
    /// Keys per LIST page (1...1000; S3's maximum is 1000).
    public var listPageSize = 1000
    /// Objects at least this large are uploaded in parts (multipart upload).
    public var multipartThreshold = 64 << 20
    /// The size of one part (S3's minimum, 5 MiB, is used when smaller; the last part may be shorter).
    public var multipartPartSize = 16 << 20
    /// Parts uploaded (and ranged GETs of a split read sent) at once.
    public var multipartConcurrency = 4
    /// Ranged reads longer than this are split into parallel GETs of this size (at least 1 MiB).
    public var parallelReadPartSize = 16 << 20

    /// A configuration; `prefix` gains a trailing `/` when it lacks one.
    public init(bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
                credentials: S3Credentials = S3Credentials(accessKeyID: "", secretAccessKey: "")) {
        self.bucket = bucket
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.region = region
        self.endpoint = endpoint
        self.addressing = endpoint == nil ? .virtualHosted : .pathStyle
        self.credentials = credentials
    }

    /// A configuration for MinIO or any other S3-compatible server (Ceph RGW, SeaweedFS,
    /// Garage, moto): path-style addressing, fixed keys, and plain `http://` allowed.
    ///
    /// ```swift
    /// let store = try S3Store(.minIO(endpoint: "http://127.0.0.1:9000", bucket: "vectors",
    ///                                accessKey: "minioadmin", secretKey: "minioadmin"))
    /// ```
    public static func minIO(endpoint: String, bucket: String, prefix: String = "", accessKey: String, secretKey: String,
                             region: String = "us-east-1") -> S3Configuration {
        var config = S3Configuration(bucket: bucket, prefix: prefix, region: region, endpoint: endpoint,
                                     credentials: S3Credentials(accessKeyID: accessKey, secretAccessKey: secretKey))
        config.addressing = .pathStyle
        return config
    }

    /// A configuration resolved as the AWS SDKs do: region from `AWS_REGION`,
    /// `AWS_DEFAULT_REGION` or the profile; endpoint from `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL` or the profile's `endpoint_url`; credentials from the default chain
    /// (environment, web identity, `~/.aws` profile, container, instance metadata), resolved at
    /// the first request; `AWS_MAX_ATTEMPTS` (or the profile's `max_attempts`), when set,
    /// becomes every operation class's retry attempts. Explicit arguments win.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` for an unusable `AWS_MAX_ATTEMPTS`.
    public static func fromEnvironment(bucket: String, prefix: String = "", endpoint: String? = nil,
                                       region: String? = nil, environment: AWSEnvironment = .current) throws -> S3Configuration {
        var config = S3Configuration(bucket: bucket, prefix: prefix, region: region ?? environment.region ?? "us-east-1",
                                     endpoint: endpoint ?? environment.endpoint(service: "s3"))
        config.credentialsProvider = CredentialChain.default(environment)
        if let attempts = try environment.maxAttempts() { config.maxAttempts = attempts }
        return config
    }
}

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
    private let directoryBucket: Bool

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
                                     requestTimeoutSeconds: configuration.requestTimeoutSeconds, caBundlePath: configuration.caBundlePath,
                                     tokenHeader: "x-amz-s3session-token",
                                     credentialsExpired: { [session = express.session] in await session.renew(replacing: $0) })
        } else {
            transport = AWSTransport(scheme: scheme, host: bucketHost, region: configuration.region, service: "s3",
                                     credentials: configuration.credentialsProvider ?? StaticCredentials(configuration.credentials),
                                     retry: configuration.retry,
                                     connectTimeoutSeconds: configuration.connectTimeoutSeconds,
                                     requestTimeoutSeconds: configuration.requestTimeoutSeconds, caBundlePath: configuration.caBundlePath)
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

    private typealias Answer = AWSTransport.Answer

    /// Sends a signed request with retries. `key` is the full object key (prefix included), nil
    /// for bucket-level requests. Returns the final answer; the caller maps non-2xx statuses.
    private func send(_ method: String, _ operation: StoreOperationClass, key: String?, query: [(String, String)] = [],
                      headers: [(String, String)] = [], body: [UInt8] = [], object: String?,
                      verify: ((Answer) -> String?)? = nil) async throws -> Answer {
        let path = pathPrefix + (key.map { "/" + SigV4.encode($0, keepSlash: true) } ?? "/")
        return try await transport.send(method, operation, path: path, query: query, headers: headers, body: body, object: object,
                                        verify: verify)
    }

    /// The error for a final non-2xx answer.
    private func failure(_ a: Answer, _ operation: String, object: String) -> StoreError {
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

    private func key(_ name: String) throws -> String {
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

    /// CreateMultipartUpload, the parts in parallel (`multipartConcurrency` at a time), then
    /// CompleteMultipartUpload — with `If-None-Match: *` for a create-if-absent. Each part
    /// carries its CRC32C (the upload is created with `x-amz-checksum-algorithm: CRC32C`, and
    /// the completion lists the parts' checksums, as S3 requires). Any failure
    /// or cancellation aborts the upload, so no parts are left behind.
    private func multipartUpload(_ name: String, _ bytes: [UInt8], ifAbsent: Bool) async throws {
        let k = try key(name)
        let created: Answer
        do {
            created = try await send("POST", .write, key: k, query: [("uploads", "")],
                                       headers: [("x-amz-checksum-algorithm", "CRC32C")], object: name)
        } catch {
            // Interrupted while the server may have created the upload: abort whatever exists
            // for this key (object names are unique to their writer, so these are ours).
            _ = await Task { try? await self.abortUploads(ofKey: k) }.value
            throw error
        }
        guard created.status == 200, let uploadID = XMLScanner(created.body).first("UploadId") else {
            throw failure(created, "CREATE MULTIPART UPLOAD", object: name)
        }
        do {
            let partSize = max(5 << 20, configuration.multipartPartSize)
            let count = (bytes.count + partSize - 1) / partSize
            var etags = [String](repeating: "", count: count)
            var checksums = [String](repeating: "", count: count)
            try await withThrowingTaskGroup(of: (Int, String, String).self) { group in
                var next = 0
                func startNext() {
                    let i = next
                    next += 1
                    let part = Array(bytes[i * partSize..<min((i + 1) * partSize, bytes.count)])
                    group.addTask {
                        let checksum = TransferChecksum.uploadHeaders(part)
                        let a = try await self.send("PUT", .write, key: k, query: [("partNumber", String(i + 1)), ("uploadId", uploadID)],
                                                    headers: checksum, body: part, object: name)
                        guard a.status == 200, let etag = a.headers["etag"] else { throw self.failure(a, "UPLOAD PART \(i + 1)", object: name) }
                        return (i, etag, checksum[0].1)
                    }
                }
                for _ in 0..<min(max(1, configuration.multipartConcurrency), count) { startNext() }
                while let (i, etag, checksum) = try await group.next() {
                    etags[i] = etag
                    checksums[i] = checksum
                    if next < count { startNext() }
                }
            }
            let parts = etags.indices.map {
                "<Part><PartNumber>\($0 + 1)</PartNumber><ETag>\(etags[$0])</ETag><ChecksumCRC32C>\(checksums[$0])</ChecksumCRC32C></Part>"
            }
            let body = Array(("<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>").utf8)
            let done = try await send("POST", ifAbsent ? .conditionalWrite : .write, key: k, query: [("uploadId", uploadID)],
                                      headers: ifAbsent ? [("if-none-match", "*")] : [], body: body, object: name)
            // S3 may answer 200 with an error document when completion fails late.
            guard done.status == 200, XMLScanner(done.body).first("Code") == nil else {
                throw failure(done, ifAbsent ? "conditional COMPLETE MULTIPART UPLOAD" : "COMPLETE MULTIPART UPLOAD", object: name)
            }
        } catch {
            // Abort even when cancelled: a new task does not inherit the cancellation.
            _ = await Task { try? await self.send("DELETE", .write, key: k, query: [("uploadId", uploadID)], object: name) }.value
            throw error
        }
    }

    /// Multipart uploads started and neither completed nor aborted under this store's prefix
    /// (their object keys).
    public func pendingMultipartUploads() async throws -> [String] {
        try await uploads(prefix: configuration.prefix).map(\.key)
    }

    /// (key, upload id) of the unfinished multipart uploads whose keys start with `prefix`.
    private func uploads(prefix: String) async throws -> [(key: String, id: String)] {
        var out: [(key: String, id: String)] = []
        var markers: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let a = try await send("GET", .listing, key: nil, query: query, object: configuration.bucket)
            guard a.status == 200 else { throw failure(a, "LIST MULTIPART UPLOADS", object: configuration.bucket) }
            let xml = XMLScanner(a.body)
            out += xml.blocks("Upload").compactMap { u in
                guard let k = xml.first("Key", in: u), let id = xml.first("UploadId", in: u) else { return nil }
                return (k, id)
            }
            let previous = markers
            markers = nil
            if xml.first("IsTruncated") == "true", let k = xml.first("NextKeyMarker") {
                let next = (key: k, id: xml.first("NextUploadIdMarker") ?? "")
                if previous.map({ $0 != next }) ?? true { markers = next }  // a page that moves nothing ends it
            }
        } while markers != nil
        return out
    }

    private func abortUploads(ofKey k: String) async throws {
        // Directory buckets list uploads by whole directories only.
        for u in try await uploads(prefix: directoryBucket ? configuration.prefix : k) where u.key == k {
            _ = try await send("DELETE", .write, key: k, query: [("uploadId", u.id)], object: k)
        }
    }

    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        var result: [ObjectInfo] = []
        var token: String?
        repeat {
            // A directory bucket lists whole directories only (and has no start-after): ask for
            // the store's prefix and filter here.
            let asked = directoryBucket ? configuration.prefix : configuration.prefix + prefix
            var query = [("list-type", "2"), ("prefix", asked), ("max-keys", String(max(1, min(1000, configuration.listPageSize))))]
            if let token { query.append(("continuation-token", token)) } else if let startAfter, !directoryBucket {
                query.append(("start-after", configuration.prefix + startAfter))
            }
            let a = try await send("GET", .listing, key: nil, query: query, object: prefix)
            guard a.status == 200 else { throw failure(a, "LIST", object: prefix) }
            let xml = XMLScanner(a.body)
            for entry in xml.blocks("Contents") {
                guard let k = xml.first("Key", in: entry), let size = xml.first("Size", in: entry).flatMap(UInt64.init),
                      k.hasPrefix(configuration.prefix) else {
                    throw StoreError(.invalidResponse, "LIST answered an entry without a usable Key and Size", object: prefix)
                }
                let name = String(k.dropFirst(configuration.prefix.count))
                if directoryBucket && (!name.hasPrefix(prefix) || startAfter.map({ name <= $0 }) ?? false) { continue }
                result.append(ObjectInfo(name: name, size: size,
                                         lastModified: xml.first("LastModified", in: entry).flatMap(parseISO8601)))
            }
            token = xml.first("IsTruncated") == "true" ? xml.first("NextContinuationToken") : nil
        } while token != nil
        return result.sorted { $0.name < $1.name }
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
