// DynamoDBConfiguration (where a table is, how to reach it) and DynamoDBClient, the signed
// JSON requests to it (GetItem, PutItem with a condition, Query).
import Foundation

/// Where a DynamoDB table is and how to reach it.
public struct DynamoDBConfiguration: Sendable {
    /// The table name.
    public var table: String
    /// The signing region.
    public var region: String
    /// An endpoint override (`http://127.0.0.1:5000`); nil for AWS.
    public var endpoint: String?
    /// The credentials requests are signed with, when no ``credentialsProvider`` is set.
    public var credentials: S3Credentials
    /// Where credentials come from; when set, ``credentials`` is ignored.
    public var credentialsProvider: (any CredentialsProvider)?
    /// How often and for how long requests are retried, per operation class: `GetItem` and
    /// `Query` are reads, the conditional `PutItem` (the commit point) a conditional write,
    /// the rest writes. See ``RetryConfiguration`` for the defaults.
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
    public var requestTimeoutSeconds = 30.0
    /// An attempt during which no byte moves, either way, for this many seconds is abandoned
    /// and retried as a timeout, long before ``requestTimeoutSeconds``: a stalled connection
    /// or a server that never answers. Precisely: libcurl's low-speed check (under 1 byte/s,
    /// averaged over its last few seconds, for this long; whole seconds, rounded up). 0 turns
    /// it off. Default 10 s.
    public var stallTimeoutSeconds = 10.0
    /// A PEM file of certificates to trust instead of the system's; TLS is always verified.
    public var caBundlePath: String?

    /// A configuration for `table`; an endpoint override for DynamoDB Local, moto or another
    /// compatible server.
    public init(table: String, region: String = "us-east-1", endpoint: String? = nil,
                credentials: S3Credentials = S3Credentials(accessKeyID: "", secretAccessKey: "")) {
        self.table = table
        self.region = region
        self.endpoint = endpoint
        self.credentials = credentials
    }

    /// A configuration resolved as the AWS SDKs do: region from `AWS_REGION`,
    /// `AWS_DEFAULT_REGION` or the profile; endpoint from `AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL` or the profile; credentials from the default chain;
    /// `AWS_MAX_ATTEMPTS` (or the profile's `max_attempts`) as every operation class's retry
    /// attempts when it is usable (``S3Configuration/fromEnvironment(bucket:prefix:endpoint:region:environment:)``
    /// reports an unusable one). Explicit arguments win.
    public static func fromEnvironment(table: String, endpoint: String? = nil, region: String? = nil,
                                       environment: AWSEnvironment = .current) -> DynamoDBConfiguration {
        var config = DynamoDBConfiguration(table: table, region: region ?? environment.region ?? "us-east-1",
                                           endpoint: endpoint ?? environment.endpoint(service: "dynamodb"))
        config.credentialsProvider = CredentialChain.default(environment)
        if let attempts = (try? environment.maxAttempts()) ?? nil { config.maxAttempts = attempts }
        return config
    }
}

/// The few DynamoDB operations the commit store needs, over the JSON protocol
/// (`X-Amz-Target: DynamoDB_20120810.<Operation>`), signed for the `dynamodb` service.
struct DynamoDBClient: Sendable {
    let table: String
    private let transport: AWSTransport

    init(_ configuration: DynamoDBConfiguration) throws {
        guard (3...255).contains(configuration.table.count),
              configuration.table.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
            throw StoreError(.invalidArgument, "'\(configuration.table)' is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _, -, .)")
        }
        try configuration.retry.validate()
        try AWSTransport.validateTimeouts(connect: configuration.connectTimeoutSeconds, request: configuration.requestTimeoutSeconds,
                                          stall: configuration.stallTimeoutSeconds)
        table = configuration.table
        let scheme: String, host: String
        if let endpoint = configuration.endpoint {
            (scheme, host) = try AWSTransport.parseEndpoint(endpoint)
        } else {
            (scheme, host) = ("https", "dynamodb.\(configuration.region).amazonaws.com")
        }
        transport = AWSTransport(scheme: scheme, host: host, region: configuration.region, service: "dynamodb",
                                 credentials: configuration.credentialsProvider ?? StaticCredentials(configuration.credentials),
                                 retry: configuration.retry,
                                 connectTimeoutSeconds: configuration.connectTimeoutSeconds,
                                 requestTimeoutSeconds: configuration.requestTimeoutSeconds,
                                 stallTimeoutSeconds: configuration.stallTimeoutSeconds, caBundlePath: configuration.caBundlePath,
                                 signsPayloadHash: false, errorFormat: .json)
    }

    /// Calls `operation` with a JSON request and returns the JSON answer.
    ///
    /// - Throws: ``StoreError``: `.alreadyExists` for a failed condition or an existing table,
    ///   `.notFound` for a missing table, `.accessDenied`, `.invalidArgument` for a rejected
    ///   request, `.throttled`/`.network` when retries ran out.
    func call(_ operation: String, _ request: [String: Any]) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        let kind: StoreOperationClass = switch operation {
        case "GetItem", "Query", "DescribeTable": .read
        case "PutItem" where request["ConditionExpression"] != nil: .conditionalWrite
        default: .write
        }
        let a = try await transport.send("POST", kind, path: "/", headers: [
            ("content-type", "application/x-amz-json-1.0"), ("x-amz-target", "DynamoDB_20120810.\(operation)"),
        ], body: Array(body), object: table)
        guard a.status == 200 else { throw failure(a, operation) }
        guard let answer = (a.body.isEmpty ? [:] : try? JSONSerialization.jsonObject(with: Data(a.body))) as? [String: Any] else {
            throw StoreError(.invalidResponse, "DynamoDB \(operation) on table '\(table)' answered something that is not a JSON object",
                             object: table, httpStatus: a.status, requestID: a.requestID)
        }
        return answer
    }

    private func failure(_ a: AWSTransport.Answer, _ operation: String) -> StoreError {
        let json = (try? JSONSerialization.jsonObject(with: Data(a.body))) as? [String: Any]
        let message = (json?["message"] ?? json?["Message"]) as? String ?? "HTTP \(a.status)"
        let kind: StoreError.Code = switch a.code {
        case "ConditionalCheckFailedException", "ResourceInUseException": .alreadyExists
        case "ResourceNotFoundException": .notFound
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
             "MissingAuthenticationTokenException", "ExpiredTokenException", "IncompleteSignatureException": .accessDenied
        default:
            switch a.status {
            case 401, 403: .accessDenied
            case 429, 500...599: .throttled
            default: .invalidArgument
            }
        }
        return StoreError(kind, "DynamoDB \(operation) on table '\(table)': \(message)", object: table,
                          httpStatus: a.status, serviceCode: a.code, requestID: a.requestID)
    }
}
