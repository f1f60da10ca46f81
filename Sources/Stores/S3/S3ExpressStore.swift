// S3ExpressStore: a BlobStore on an S3 Express One Zone directory bucket, and the session
// credentials (CreateSession) its requests are signed with.
public import Foundation

/// A ``BlobStore`` on an S3 Express One Zone directory bucket.
///
/// - The bucket name must have the directory-bucket form `<base>--<az-id>--x-s3`
///   (`vectors--usw2-az1--x-s3`); requests go to the zonal endpoint
///   `https://<bucket>.s3express-<az-id>.<region>.amazonaws.com` unless the configuration
///   names an endpoint (then path-style, for emulators).
/// - Object requests are signed with session credentials from `CreateSession` (asked with the
///   configuration's credentials), sent in `x-amz-s3session-token`. A session lasts 5 minutes;
///   a new one is created `sessionRefreshWindow` seconds before it expires, and at once when
///   the service answers that a session expired. Concurrent requests share one session.
/// - Directory buckets list whole directories only (a prefix must end in `/`), in no
///   particular order, and without start-after. This store asks for its own prefix (which
///   ends in `/`) and filters and sorts itself, so ``list(prefix:startAfter:)`` keeps the
///   ``BlobStore`` contract. A listing therefore costs as much as listing the whole prefix.
/// - Create-if-absent uses `If-None-Match: *`, which directory buckets support.
public final class S3ExpressStore: BlobStore, CustomStringConvertible {
    /// The configuration (its description hides secrets).
    public let configuration: S3Configuration
    /// The availability zone id in the bucket name (`usw2-az1`).
    public let availabilityZoneID: String
    private let store: S3Store
    private let sessions: ExpressSessions

    /// What a session may do (`x-amz-create-session-mode`).
    public enum SessionMode: String, Sendable {
        /// Reads and writes (writers).
        case readWrite = "ReadWrite"
        /// Reads only: for readers, under the least privilege (a bucket policy can allow
        /// only `ReadOnly` sessions). Writes are refused with `.accessDenied`.
        case readOnly = "ReadOnly"
    }

    /// Creates a store. No request is made.
    ///
    /// - Parameters:
    ///   - sessionMode: what the sessions may do; `.readOnly` for read-only handles.
    ///   - sessionRefreshWindow: how long before a session expires a new one is made
    ///     (seconds; the AWS SDKs use about a minute of a session's five).
    /// - Throws: ``StoreError`` `.invalidArgument` for a bucket name that is not a directory
    ///   bucket's or a malformed endpoint.
    public init(_ configuration: S3Configuration, sessionMode: SessionMode = .readWrite,
                sessionRefreshWindow: TimeInterval = 60) throws {
        availabilityZoneID = try Self.availabilityZoneID(ofBucket: configuration.bucket)
        self.configuration = configuration
        let scheme: String, host: String
        var config = configuration
        if let endpoint = configuration.endpoint {
            (scheme, host) = try AWSTransport.parseEndpoint(endpoint)
        } else {
            (scheme, host) = ("https", "s3express-\(availabilityZoneID).\(configuration.region).amazonaws.com")
            config.addressing = .virtualHosted
        }
        let (bucketHost, pathPrefix) = S3Store.address(config, host: host)
        let path = pathPrefix.isEmpty ? "/" : pathPrefix  // CreateSession is `GET /?session` on the bucket
        // CreateSession is signed with the caller's own credentials, under the s3express service.
        let control = AWSTransport(scheme: scheme, host: bucketHost, region: config.region, service: "s3express",
                                   credentials: config.credentialsProvider ?? StaticCredentials(config.credentials),
                                   retry: config.retry, connectTimeoutSeconds: config.connectTimeoutSeconds,
                                   requestTimeoutSeconds: config.requestTimeoutSeconds,
                                   stallTimeoutSeconds: config.stallTimeoutSeconds, caBundlePath: config.caBundlePath)
        sessions = ExpressSessions(transport: control, path: path, bucket: config.bucket, mode: sessionMode,
                                   refreshWindow: sessionRefreshWindow)
        store = try S3Store(config, express: (host: host, scheme: scheme, session: sessions))
    }

    /// The zonal endpoint of a directory bucket in `region`.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` when `bucket` is not a directory bucket name.
    public static func zonalEndpoint(bucket: String, region: String) throws -> String {
        "https://s3express-\(try availabilityZoneID(ofBucket: bucket)).\(region).amazonaws.com"
    }

    /// The availability zone id of a directory bucket name (`vectors--usw2-az1--x-s3` → `usw2-az1`).
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` naming the rule the name breaks.
    public static func availabilityZoneID(ofBucket bucket: String) throws -> String {
        func invalid(_ why: String) -> StoreError {
            StoreError(.invalidArgument, "'\(bucket)' is not an S3 Express directory bucket name: \(why) (expected <base>--<az-id>--x-s3, e.g. vectors--usw2-az1--x-s3)", object: bucket)
        }
        guard bucket.hasSuffix("--x-s3") else { throw invalid("it does not end in --x-s3") }
        guard (3...63).contains(bucket.count) else { throw invalid("it has \(bucket.count) characters, not 3 to 63") }
        let stem = bucket.dropLast(6)
        guard let sep = stem.range(of: "--", options: .backwards) else { throw invalid("it has no --<az-id>-- part") }
        let base = stem[..<sep.lowerBound], zone = stem[sep.upperBound...]
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard !base.isEmpty, base.allSatisfy(allowed.contains), base.first != "-", base.last != "-" else {
            throw invalid("the base name must be lowercase letters, digits and inner hyphens")
        }
        // use1-az4, usw2-az1, and Local Zones such as usw2-lax1-az1.
        let parts = zone.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, zone.allSatisfy(allowed.contains), parts.allSatisfy({ !$0.isEmpty }),
              let last = parts.last, last.hasPrefix("az"), last.count > 2, last.dropFirst(2).allSatisfy(\.isNumber) else {
            throw invalid("'\(zone)' is not an availability zone id")
        }
        return String(zone)
    }

    /// Sessions created so far by this store (each lasts 5 minutes).
    public var sessionsCreated: Int { sessions.created.value }

    public var description: String {
        "S3ExpressStore(bucket: \(configuration.bucket), prefix: \(configuration.prefix), zone: \(availabilityZoneID), endpoint: \(configuration.endpoint ?? "AWS"))"
    }

    // MARK: BlobStore (the S3 requests, signed for the session)

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] { try await store.read(name, range: range) }
    public func read(_ name: String, ranges: [Range<UInt64>]) async throws -> [[UInt8]] { try await store.read(name, ranges: ranges) }
    public func put(_ name: String, _ bytes: [UInt8]) async throws { try await store.put(name, bytes) }
    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws { try await store.putIfAbsent(name, bytes) }
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        try await store.list(prefix: prefix, startAfter: startAfter)
    }
    public func delete(_ name: String) async throws { try await store.delete(name) }
    public func size(_ name: String) async throws -> UInt64 { try await store.size(name) }

    /// Multipart uploads started and neither completed nor aborted under this store's prefix.
    public func pendingMultipartUploads() async throws -> [String] { try await store.pendingMultipartUploads() }
}

/// The session credentials of one directory bucket: created by `CreateSession`, cached,
/// renewed before they expire or when the service says they did.
final class ExpressSessions: CredentialsProvider {
    let created = AtomicCounter()
    private let cache: RefreshingCredentials

    init(transport: AWSTransport, path: String, bucket: String, mode: S3ExpressStore.SessionMode, refreshWindow: TimeInterval) {
        cache = RefreshingCredentials(CreateSession(transport: transport, path: path, bucket: bucket, mode: mode, created: created),
                                      refreshWindow: refreshWindow)
    }

    func credentials() async throws -> S3Credentials { try await cache.credentials() }

    /// The service rejected `rejected` as expired: the next request gets a new session.
    func renew(replacing rejected: S3Credentials) async -> Bool {
        cache.invalidate(rejected)
        return true
    }
}

/// One `CreateSession` call (`GET /?session`).
private struct CreateSession: CredentialsProvider {
    let transport: AWSTransport
    let path: String
    let bucket: String
    let mode: S3ExpressStore.SessionMode
    let created: AtomicCounter

    func credentials() async throws -> S3Credentials {
        let a = try await transport.send("GET", .read, path: path, query: [("session", "")],
                                         headers: [("x-amz-create-session-mode", mode.rawValue)], object: bucket)
        let xml = XMLScanner(a.body)
        guard a.status == 200 else {
            let code: StoreError.Code = switch a.status {
            case _ where a.code.map(AWSTransport.expiredCredentialCodes.contains) ?? false: .accessDenied
            case 401, 403: .accessDenied
            case 404: .notFound
            case 429, 500...599: .throttled
            default: .invalidArgument
            }
            throw StoreError(code, "CreateSession on directory bucket '\(bucket)': \(xml.first("Message") ?? "HTTP \(a.status)")",
                             object: bucket, httpStatus: a.status, serviceCode: a.code, requestID: a.requestID)
        }
        guard let key = xml.first("AccessKeyId"), let secret = xml.first("SecretAccessKey"),
              let token = xml.first("SessionToken") else {
            throw StoreError(.invalidResponse, "CreateSession on '\(bucket)' answered without session credentials", object: bucket)
        }
        created.increment()
        return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token,
                             expiration: xml.first("Expiration").flatMap(parseISO8601) ?? Date().addingTimeInterval(300))
    }
}
