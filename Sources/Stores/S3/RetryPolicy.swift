// Retries of store requests: the public per-operation-class budgets (``RetryConfiguration``),
// the backoff, the shared retry quota, and how an attempt's answer is classified.

/// The kinds of request a remote store retries under separate budgets.
public enum StoreOperationClass: String, Sendable, Hashable, CaseIterable {
    /// GET, ranged GET, HEAD (and S3 Express `CreateSession`, DynamoDB `GetItem`/`Query`).
    case read
    /// PUT, multipart upload, DELETE, bucket and table creation, DynamoDB `UpdateItem`.
    case write
    /// Create-if-absent PUTs (`If-None-Match: *`, commits) and DynamoDB's conditional `PutItem`.
    case conditionalWrite
    /// LIST requests (ListObjectsV2, ListMultipartUploads).
    case listing
}

/// How often and for how long a store retries a failed request (throttling, 5xx, resets,
/// timeouts, bodies damaged in transit), per ``StoreOperationClass``.
///
/// Retries follow the AWS SDKs' standard mode: exponential backoff with full jitter
/// (`baseDelay · 2^(attempt-1)`, capped at ``maxDelay``) and a retry quota shared by all
/// requests of a store. A request stops retrying when its class's ``Budget/attempts`` are
/// used up or when the next wait would end after its ``Budget/maxRetryTime``, whichever comes
/// first; then it throws what the last attempt failed with (`.throttled`, `.conflict`,
/// `.network`), saying how many attempts were made over how long. A cancelled task stops
/// waiting at once and throws `.cancelled`.
///
/// The defaults ride out several seconds of a store's bad weather (10 attempts within 20 s
/// for reads, commits and listings, 8 for other writes); ``standard`` is the SDKs' thin
/// 3-attempt mode.
///
/// ```swift
/// var config = S3Configuration(bucket: "vectors")
/// config.retry.reads = .init(attempts: 15, maxRetryTime: .seconds(30))
/// ```
public struct RetryConfiguration: Sendable, Hashable {
    /// The retry budget of one operation class.
    public struct Budget: Sendable, Hashable {
        /// Attempts per request, the first one included (at least 1).
        public var attempts: Int
        /// The longest time from a request's first attempt to the start of its last retry;
        /// a retry whose backoff would end later is not made.
        public var maxRetryTime: Duration

        /// A budget of `attempts` attempts (the first included) within `maxRetryTime`.
        public init(attempts: Int, maxRetryTime: Duration) {
            self.attempts = attempts
            self.maxRetryTime = maxRetryTime
        }
    }

    /// GET, ranged GET, HEAD. Default: 10 attempts within 20 s.
    public var reads = Budget(attempts: 10, maxRetryTime: .seconds(20))
    /// PUT, multipart upload, DELETE. Default: 8 attempts within 20 s.
    public var writes = Budget(attempts: 8, maxRetryTime: .seconds(20))
    /// Create-if-absent PUTs and conditional DynamoDB `PutItem` (commits). Default: 10
    /// attempts within 20 s.
    public var conditionalWrites = Budget(attempts: 10, maxRetryTime: .seconds(20))
    /// Listings. Default: 10 attempts within 20 s.
    public var listings = Budget(attempts: 10, maxRetryTime: .seconds(20))
    /// The backoff ceiling after the first failed attempt (doubled after each further one).
    /// Default 50 ms.
    public var baseDelay: Duration = .milliseconds(50)
    /// The largest backoff ceiling. Default 3 s.
    public var maxDelay: Duration = .seconds(3)
    /// Whether retries spend the store's shared retry quota (the SDKs' token bucket: 500
    /// tokens, 5 per retry, 10 per timeout retry, returned when a retried request succeeds,
    /// 1 back per first-attempt success), so a store that fails everything is not hammered
    /// by every request at once. Default true.
    public var usesRetryQuota = true
    /// The least time an attempt is given. An attempt may take the store's request timeout,
    /// but no longer than what is left of its class's ``Budget/maxRetryTime``, so one slow
    /// attempt cannot outlast the budget; when less than this is left (a retry near the end
    /// of the budget), the attempt still gets this long (never more than the request timeout),
    /// so a large transfer keeps a fair chance. Attempts during which nothing moves are cut
    /// sooner by the store's stall timeout (`stallTimeoutSeconds`). Default 10 s.
    public var minimumAttemptTime: Duration = .seconds(10)

    /// The defaults described above.
    public init() {}

    /// The AWS SDKs' standard mode: 3 attempts for every class, backoff capped at 20 s.
    public static var standard: RetryConfiguration {
        var c = RetryConfiguration()
        c.setAttempts(3)
        c.maxDelay = .seconds(20)
        return c
    }

    /// The budget of `operation`'s class.
    public subscript(_ operation: StoreOperationClass) -> Budget {
        get {
            switch operation {
            case .read: reads
            case .write: writes
            case .conditionalWrite: conditionalWrites
            case .listing: listings
            }
        }
        set {
            switch operation {
            case .read: reads = newValue
            case .write: writes = newValue
            case .conditionalWrite: conditionalWrites = newValue
            case .listing: listings = newValue
            }
        }
    }

    /// Sets every class's attempts to `attempts` (time budgets unchanged).
    public mutating func setAttempts(_ attempts: Int) {
        for c in StoreOperationClass.allCases { self[c].attempts = attempts }
    }

    /// Checks the values.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` naming the first unusable value.
    public func validate() throws {
        for c in StoreOperationClass.allCases {
            guard self[c].attempts >= 1 else {
                throw StoreError(.invalidArgument, "retry attempts for \(c.rawValue) requests must be at least 1, not \(self[c].attempts)")
            }
            guard self[c].maxRetryTime >= .zero else {
                throw StoreError(.invalidArgument, "the retry time for \(c.rawValue) requests must not be negative")
            }
        }
        guard minimumAttemptTime >= .milliseconds(1) else {
            throw StoreError(.invalidArgument, "the minimum attempt time must be at least 1 ms, not \(minimumAttemptTime)")
        }
        guard baseDelay >= .zero, maxDelay >= baseDelay else {
            throw StoreError(.invalidArgument, "retry delays must satisfy 0 <= baseDelay (\(baseDelay)) <= maxDelay (\(maxDelay))")
        }
    }
}

/// The backoff of one request under a ``RetryConfiguration``: exponential with full jitter up
/// to a cap.
struct RetryPolicy: Sendable {
    var maxAttempts: Int
    var baseDelayMillis = 50
    var maxDelayMillis = 20_000
    /// ``RetryConfiguration/minimumAttemptTime`` in milliseconds.
    var minimumAttemptMillis = 10_000

    init(maxAttempts: Int, baseDelayMillis: Int = 50, maxDelayMillis: Int = 20_000, minimumAttemptMillis: Int = 10_000) {
        self.maxAttempts = maxAttempts
        self.baseDelayMillis = baseDelayMillis
        self.maxDelayMillis = maxDelayMillis
        self.minimumAttemptMillis = minimumAttemptMillis
    }

    /// The policy of `operation`'s class.
    init(_ configuration: RetryConfiguration, _ operation: StoreOperationClass) {
        self.init(maxAttempts: max(1, configuration[operation].attempts),
                  baseDelayMillis: max(0, Self.millis(configuration.baseDelay)),
                  maxDelayMillis: max(0, Self.millis(configuration.maxDelay)),
                  minimumAttemptMillis: max(1, Self.millis(configuration.minimumAttemptTime)))
    }

    /// The time limit of an attempt that starts with `remainingMillis` of the retry time left:
    /// the request timeout, cut to the time left, but at least ``minimumAttemptMillis`` (and
    /// never more than the request timeout; a request timeout of 0 or less means none).
    func attemptTimeoutMillis(requestTimeoutMillis: Int, remainingMillis: Int) -> Int {
        let allowed = max(remainingMillis, minimumAttemptMillis, 1)
        return requestTimeoutMillis > 0 ? min(requestTimeoutMillis, allowed) : allowed
    }

    static func millis(_ d: Duration) -> Int {
        let (s, atto) = d.components
        return Int(clamping: s) &* 1000 &+ Int(atto / 1_000_000_000_000_000)
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1), full jitter.
    func delayMillis<G: RandomNumberGenerator>(afterAttempt attempt: Int, using rng: inout G) -> Int {
        let ceiling = min(maxDelayMillis, baseDelayMillis << min(attempt - 1, 20))
        return Int.random(in: 0...max(0, ceiling), using: &rng)
    }
}

/// The retry token bucket (standard mode: 500 tokens, 5 per retry, 10 per timeout retry; a
/// request that succeeds after retries returns its last retry's cost, one that succeeds at
/// once returns 1), so only requests that fail for good drain it.
struct RetryQuota: Sendable {
    private(set) var tokens = 500
    static let retryCost = 5, timeoutCost = 10, successRefund = 1, capacity = 500

    /// Takes the cost of one retry and returns it (0 when the quota is spent: then the error
    /// is returned as is).
    mutating func acquire(timeout: Bool) -> Int {
        let cost = timeout ? Self.timeoutCost : Self.retryCost
        guard tokens >= cost else { return 0 }
        tokens -= cost
        return cost
    }

    /// A request succeeded; `lastRetryCost` is what its last retry took (0 when it was not retried).
    mutating func recordSuccess(lastRetryCost: Int = 0) {
        tokens = min(Self.capacity, tokens + (lastRetryCost > 0 ? lastRetryCost : Self.successRefund))
    }
}

/// How the answer to one attempt is classified.
enum AttemptOutcome: Equatable {
    case success
    case retry(timeout: Bool)
    case fail

    /// 400 answers the SDKs retry: throttling (S3, DynamoDB, STS) and request timeouts.
    static let throttlingCodes: Set<String> = [
        "RequestTimeout", "Throttling", "ThrottlingException", "SlowDown", "ProvisionedThroughputExceededException",
        "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
        "PriorRequestNotComplete", "TransactionInProgressException",
    ]

    /// 400 answers saying the request body arrived damaged (its checksum or hash did not
    /// match): nothing was written, so sending it again is safe.
    static let damagedBodyCodes: Set<String> = ["BadDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"]

    /// Classifies an HTTP status (with the S3 error code, when the body had one).
    static func classify(status: Int, code: String?) -> AttemptOutcome {
        switch status {
        case 200..<300, 304: return .success
        case 500, 502, 503, 504: return .retry(timeout: false)
        case 409 where code == "ConditionalRequestConflict": return .retry(timeout: false)
        case 429: return .retry(timeout: false)
        case 400 where code.map(throttlingCodes.contains) ?? false:
            return .retry(timeout: code == "RequestTimeout")
        case 400 where code.map(damagedBodyCodes.contains) ?? false:
            return .retry(timeout: false)
        default: return .fail
        }
    }
}
