// AWSTransport: signed requests to one AWS (or AWS-compatible) endpoint with the SDKs' standard
// retry mode, shared by S3, S3 Express and DynamoDB.
import Foundation

/// Signed requests to one AWS (or AWS-compatible) endpoint with the SDKs' standard retry mode:
/// the one request loop S3, S3 Express and DynamoDB share.
///
/// Each attempt asks the credentials provider (which caches) and signs afresh, so a retry
/// never carries an expired signature. Retries follow the ``RetryConfiguration`` budget of
/// the request's ``StoreOperationClass`` and spend the transport's ``RetryQuota``. When the service rejects credentials as expired, the
/// `credentialsExpired` hook may renew them and the request is sent once more at once.
final class AWSTransport: Sendable {
    /// The final answer to a request (any status; the caller maps non-2xx ones).
    struct Answer: Sendable {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        /// The service's error code (`SlowDown`, `ConditionalCheckFailedException`, …).
        var code: String?
        var requestID: String? { headers["x-amz-request-id"] ?? headers["x-amzn-requestid"] }
    }

    /// How the service reports error codes in bodies.
    enum ErrorFormat: Sendable {
        /// `<Error><Code>…</Code>` (S3).
        case xml
        /// `{"__type": "namespace#Code"}` (DynamoDB's JSON protocol).
        case json
    }

    let scheme: String
    let host: String
    let region: String
    let service: String
    let retry: RetryConfiguration
    private let http: CurlHTTPClient
    private let credentials: any CredentialsProvider
    /// The header the session token travels in (`x-amz-s3session-token` for S3 Express sessions).
    private let tokenHeader: String
    /// S3 signs `x-amz-content-sha256`; other services need not.
    private let signsPayloadHash: Bool
    private let errorFormat: ErrorFormat
    private let credentialsExpired: (@Sendable (S3Credentials) async -> Bool)?
    private let quota = Locked(RetryQuota())

    init(scheme: String, host: String, region: String, service: String, credentials: any CredentialsProvider,
         retry: RetryConfiguration, connectTimeoutSeconds: Double, requestTimeoutSeconds: Double, stallTimeoutSeconds: Double = 0,
         caBundlePath: String? = nil,
         tokenHeader: String = "x-amz-security-token", signsPayloadHash: Bool = true, errorFormat: ErrorFormat = .xml,
         credentialsExpired: (@Sendable (S3Credentials) async -> Bool)? = nil) {
        self.scheme = scheme
        self.host = host
        self.region = region
        self.service = service
        self.credentials = credentials
        self.retry = retry
        self.tokenHeader = tokenHeader
        self.signsPayloadHash = signsPayloadHash
        self.errorFormat = errorFormat
        self.credentialsExpired = credentialsExpired
        http = CurlHTTPClient(connectTimeoutMillis: Self.millis(connectTimeoutSeconds),
                              requestTimeoutMillis: Self.millis(requestTimeoutSeconds),
                              stallTimeoutMillis: Self.millis(stallTimeoutSeconds), caBundlePath: caBundlePath)
    }

    /// Seconds from a configuration as whole milliseconds (0 for anything not a finite positive
    /// number; ``validateTimeouts(connect:request:stall:)`` rejects those first).
    private static func millis(_ seconds: Double) -> Int {
        seconds.isFinite && seconds > 0 ? Int(min(seconds, 1e9) * 1000) : 0
    }

    /// Checks a configuration's timeouts, in seconds.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` naming the first that is negative or not finite.
    static func validateTimeouts(connect: Double, request: Double, stall: Double) throws {
        for (name, value) in [("connectTimeoutSeconds", connect), ("requestTimeoutSeconds", request), ("stallTimeoutSeconds", stall)] {
            guard value.isFinite, value >= 0 else {
                throw StoreError(.invalidArgument, "\(name) must be a finite number of seconds, 0 or more, not \(value)")
            }
        }
    }

    /// Splits `http(s)://host[:port][/…]` into scheme and host.
    ///
    /// - Throws: ``StoreError`` `.invalidArgument` for anything else.
    static func parseEndpoint(_ endpoint: String) throws -> (scheme: String, host: String) {
        guard let sep = endpoint.firstRange(of: "://") else {
            throw StoreError(.invalidArgument, "endpoint '\(endpoint)' needs a scheme, e.g. http://127.0.0.1:9000")
        }
        let scheme = String(endpoint[..<sep.lowerBound])
        let host = String(endpoint[sep.upperBound...].prefix { $0 != "/" })
        guard scheme == "http" || scheme == "https", !host.isEmpty else {
            throw StoreError(.invalidArgument, "endpoint '\(endpoint)' is not an http(s) URL")
        }
        return (scheme, host)
    }

    /// Error codes that mean "these (session) credentials expired; get new ones".
    static let expiredCredentialCodes: Set<String> = ["ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"]

    /// Sends a signed request with retries and returns the final answer.
    ///
    /// - Parameters:
    ///   - operation: whose retry budget applies.
    ///   - path: the already-encoded canonical path.
    ///   - object: what the request is about, for error messages.
    ///   - verify: checks a 2xx answer's body (a response checksum); a reason returned means
    ///     the body was damaged in transit and the request is retried like a 5xx.
    /// - Throws: ``StoreError`` `.cancelled`, `.network` (transport failed, or bodies kept
    ///   arriving damaged, until retries ran out), `.throttled`/`.conflict` (retryable
    ///   answers until retries ran out).
    func send(_ method: String, _ operation: StoreOperationClass, path: String, query: [(String, String)] = [],
              headers extra: [(String, String)] = [], body: [UInt8] = [], object: String?,
              verify: ((Answer) -> String?)? = nil) async throws -> Answer {
        let queryString = SigV4.canonicalQuery(query)
        let url = "\(scheme)://\(host)\(path)\(queryString.isEmpty ? "" : "?" + queryString)"
        let payloadHash = body.isEmpty ? Crypto.emptyPayloadHash : Crypto.hex(Crypto.sha256(body))
        let policy = RetryPolicy(retry, operation)
        let budget = retry[operation].maxRetryTime
        let clock = ContinuousClock()
        let start = clock.now
        var rng = SystemRandomNumberGenerator()
        var attempt = 0
        var lastRetryCost = 0
        var renewedCredentials = false
        var damage: String?  // why the last answer's body was rejected
        while true {
            attempt += 1
            if Task.isCancelled { throw StoreError(.cancelled, "\(method) cancelled", object: object) }
            let creds = try await credentials.credentials()
            let signer = SigV4(credentials: creds, region: region, service: service)
            let amzDate = SigV4.amzDate(epochSeconds: Int(Date().timeIntervalSince1970))
            var headers = extra + [("host", host), ("x-amz-date", amzDate)]
            if signsPayloadHash { headers.append(("x-amz-content-sha256", payloadHash)) }
            if let token = creds.sessionToken { headers.append((tokenHeader, token)) }
            headers.append(("Authorization", signer.authorization(method: method, path: path, query: query, headers: headers,
                                                                  payloadHash: payloadHash, amzDate: amzDate)))
            // No attempt outlasts the retry time left (with a floor; see RetryConfiguration.minimumAttemptTime).
            let timeoutMillis = policy.attemptTimeoutMillis(requestTimeoutMillis: http.requestTimeoutMillis,
                                                            remainingMillis: RetryPolicy.millis(budget - (clock.now - start)))
            let (response, curlCode) = try await http.perform(HTTPRequest(method: method, url: url, headers: headers, body: body,
                                                                          timeoutMillis: timeoutMillis))
            var outcome: AttemptOutcome
            var answer: Answer?
            damage = nil
            if let response {
                let code = response.status >= 300 && !response.body.isEmpty ? errorCode(response.body) : nil
                answer = Answer(status: response.status, headers: response.headers, body: response.body, code: code)
                if let code, Self.expiredCredentialCodes.contains(code), !renewedCredentials, let renew = credentialsExpired,
                   await renew(creds) {
                    renewedCredentials = true  // one immediate re-send with fresh credentials
                    attempt -= 1
                    continue
                }
                outcome = AttemptOutcome.classify(status: response.status, code: code)
                if let code, AttemptOutcome.damagedBodyCodes.contains(code) {
                    damage = "the store found the request body damaged (\(code))"
                } else if outcome == .success, let verify, let reason = verify(answer!) {
                    damage = reason
                    outcome = .retry(timeout: false)
                }
            } else if curlCode == .abortedByCallback {
                throw StoreError(.cancelled, "\(method) cancelled", object: object)
            } else {
                outcome = curlCode.isTransient ? .retry(timeout: curlCode == .timedOut) : .fail
            }
            switch outcome {
            case .success:
                if retry.usesRetryQuota { quota.withLock { $0.recordSuccess(lastRetryCost: lastRetryCost) } }
                return answer!
            case .fail:
                if let answer { return answer }
                throw StoreError(.network, "\(method) \(scheme)://\(host) failed: \(curlCode)", object: object)
            case .retry(let timeout):
                let delay = policy.delayMillis(afterAttempt: attempt, using: &rng)
                let elapsed = clock.now - start
                var why: String?
                if attempt >= policy.maxAttempts {
                    why = "its \(policy.maxAttempts) attempts"
                } else if elapsed + .milliseconds(delay) > budget {
                    why = "its retry time of \(Self.seconds(budget))"
                } else if retry.usesRetryQuota {
                    lastRetryCost = quota.withLock { $0.acquire(timeout: timeout) }
                    if lastRetryCost == 0 { why = "the store's retry quota (too many requests are failing)" }
                }
                if let why {
                    let spent = "after \(attempt) attempt\(attempt == 1 ? "" : "s") in \(Self.seconds(elapsed)) (\(operation.rawValue) requests stop at \(why); see RetryConfiguration)"
                    if let damage {
                        throw StoreError(.network, "\(method) kept arriving damaged \(spent): \(damage)", object: object,
                                         httpStatus: answer?.status, serviceCode: answer?.code, requestID: answer?.requestID)
                    }
                    if let answer {
                        let kind: StoreError.Code = answer.status == 409 ? .conflict : .throttled
                        throw StoreError(kind, "\(method) kept failing with HTTP \(answer.status) \(spent)",
                                         object: object, httpStatus: answer.status, serviceCode: answer.code,
                                         requestID: answer.requestID)
                    }
                    throw StoreError(.network, "\(method) \(scheme)://\(host) failed \(spent): \(curlCode)\(timeoutNote(curlCode, timeoutMillis))",
                                     object: object)
                }
                do { try await Task.sleep(nanoseconds: UInt64(delay) * 1_000_000) } catch {
                    throw StoreError(.cancelled, "\(method) cancelled while waiting to retry", object: object)
                }
            }
        }
    }

    /// What a timed-out attempt was allowed, for messages ("" for other failures).
    private func timeoutNote(_ code: CurlCode, _ attemptMillis: Int) -> String {
        guard code == .timedOut else { return "" }
        let stall = http.stallTimeoutMillis > 0 ? "\(http.settings.stallTimeSeconds) s with no byte moving or " : ""
        return " (an attempt stops after \(stall)\(Self.seconds(.milliseconds(attemptMillis))) in all; see stallTimeoutSeconds, requestTimeoutSeconds)"
    }

    /// A duration for messages: `1.25 s`.
    static func seconds(_ d: Duration) -> String {
        let ms = RetryPolicy.millis(d)
        return "\(ms / 1000).\(String(ms % 1000 / 10).leftPadded(2)) s"
    }

    /// The service's error code in an error body.
    private func errorCode(_ body: [UInt8]) -> String? {
        switch errorFormat {
        case .xml:
            return XMLScanner(body).first("Code")
        case .json:
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let type = (object["__type"] ?? object["code"]) as? String else { return nil }
            return String(type.split(separator: "#").last ?? Substring(type))
        }
    }
}


private extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
