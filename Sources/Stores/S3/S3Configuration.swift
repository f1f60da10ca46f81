// S3Configuration: where an S3 store's objects live and how to reach them (bucket, prefix,
// endpoint, credentials, retries, timeouts, multipart and parallel-read sizes), and its factories
// (`minIO`, `fromEnvironment`).
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
    /// Time allowed for a whole request, in seconds. An attempt is also cut to what is left
    /// of its retry time (see ``RetryConfiguration/minimumAttemptTime``).
    public var requestTimeoutSeconds = 60.0
    /// An attempt during which no byte moves, either way, for this many seconds is abandoned
    /// and retried as a timeout, long before ``requestTimeoutSeconds``: a stalled connection
    /// or a server that never answers. Precisely: libcurl's low-speed check (under 1 byte/s,
    /// averaged over its last few seconds, for this long; whole seconds, rounded up). 0 turns
    /// it off. Default 10 s.
    public var stallTimeoutSeconds = 10.0
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
