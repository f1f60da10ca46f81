/// The AWS SDKs' "standard" retry mode as a value: exponential backoff with full jitter up to a
/// cap, at most `maxAttempts` attempts, and a retry quota shared by all requests of a client
/// (retries spend tokens, successes return them) so a failing service is not hammered.
struct RetryPolicy: Sendable {
    var maxAttempts: Int
    var baseDelayMillis = 50
    var maxDelayMillis = 20_000

    /// The delay before attempt `attempt + 1` (attempt counts from 1), full jitter.
    func delayMillis<G: RandomNumberGenerator>(afterAttempt attempt: Int, using rng: inout G) -> Int {
        let ceiling = min(maxDelayMillis, baseDelayMillis << min(attempt - 1, 20))
        return Int.random(in: 0...ceiling, using: &rng)
    }
}

/// The retry token bucket (standard mode: 500 tokens, 5 per retry, 10 per timeout retry, 1 back per success).
struct RetryQuota: Sendable {
    private(set) var tokens = 500
    static let retryCost = 5, timeoutCost = 10, successRefund = 1, capacity = 500

    /// Takes the cost of one retry; false when the quota is spent (then the error is returned as is).
    mutating func acquire(timeout: Bool) -> Bool {
        let cost = timeout ? Self.timeoutCost : Self.retryCost
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }

    mutating func recordSuccess() { tokens = min(Self.capacity, tokens + Self.successRefund) }
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

    /// Classifies an HTTP status (with the S3 error code, when the body had one).
    static func classify(status: Int, code: String?) -> AttemptOutcome {
        switch status {
        case 200..<300, 304: return .success
        case 500, 502, 503, 504: return .retry(timeout: false)
        case 409 where code == "ConditionalRequestConflict": return .retry(timeout: false)
        case 429: return .retry(timeout: false)
        case 400 where code.map(throttlingCodes.contains) ?? false:
            return .retry(timeout: code == "RequestTimeout")
        default: return .fail
        }
    }
}
