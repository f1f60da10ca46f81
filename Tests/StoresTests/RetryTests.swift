import Foundation
@testable import Stores
import Testing
import _VecgoTestSupport

/// The standard retry mode, observed on the wire: a local HTTP server answers with the
/// failures S3 and DynamoDB send, and the tests count the attempts our clients make.
@Suite struct RetryTests {
    /// Answers `script[i]` to the i-th request (the last one from then on).
    static func server(_ script: [LocalHTTPServer.Response]) throws -> LocalHTTPServer {
        let next = Locked(0)
        return try LocalHTTPServer { _ in
            let i = next.withLock { n -> Int in
                defer { n += 1 }
                return n
            }
            return script[min(i, script.count - 1)]
        }
    }

    static func s3(_ server: LocalHTTPServer, attempts: Int = 3, timeout: Double = 10) throws -> S3Store {
        var c = S3Configuration(bucket: "b", endpoint: server.url, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.maxAttempts = attempts
        for budget in [\RetryConfiguration.reads, \.writes, \.conditionalWrites, \.listings] {
            c.retry[keyPath: budget].maxRetryTime = .seconds(3600)  // attempts alone decide, however loaded the machine
        }
        c.requestTimeoutSeconds = timeout
        return try S3Store(c)
    }

    /// A store with the given retry configuration (the defaults when nil).
    static func s3(_ server: LocalHTTPServer, retry: RetryConfiguration) throws -> S3Store {
        var c = S3Configuration(bucket: "b", endpoint: server.url, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.retry = retry
        return try S3Store(c)
    }

    /// A retry configuration that waits 1 ms between attempts, so the tests stay quick.
    static func quick(_ attempts: Int) -> RetryConfiguration {
        var r = RetryConfiguration()
        r.setAttempts(attempts)
        // Attempts alone decide: a loaded machine must not run a test out of retry time.
        for budget in [\RetryConfiguration.reads, \.writes, \.conditionalWrites, \.listings] {
            r[keyPath: budget].maxRetryTime = .seconds(3600)
        }
        r.baseDelay = .milliseconds(1)
        r.maxDelay = .milliseconds(1)
        return r
    }

    static func s3Error(_ status: Int, _ code: String, requestID: String = "REQ-1") -> LocalHTTPServer.Response {
        LocalHTTPServer.Response(status, "<Error><Code>\(code)</Code><Message>\(code) happened</Message></Error>",
                                 headers: [("x-amz-request-id", requestID)])
    }

    @Test func throttlingAndServerErrorsAreRetriedUntilTheySucceed() async throws {
        let server = try Self.server([Self.s3Error(503, "SlowDown"), Self.s3Error(500, "InternalError"), .init(200, "ok")])
        #expect(try await Self.s3(server).read("x") == Array("ok".utf8))
        #expect(server.requests.count == 3)
    }

    @Test func retriesRunOutAsThrottledWithTheCodeAndRequestID() async throws {
        let server = try Self.server([Self.s3Error(503, "SlowDown", requestID: "REQ-42")])
        let e = await #expect(throws: StoreError.self) { _ = try await Self.s3(server, attempts: 4).read("x") }
        #expect(e?.code == .throttled)
        #expect(e?.serviceCode == "SlowDown")
        #expect(e?.requestID == "REQ-42")
        #expect(e?.httpStatus == 503)
        #expect(server.requests.count == 4)
    }

    @Test func aConditionalRequestConflictIsRetriedAndAFailedPreconditionIsNot() async throws {
        let conflictThenOK = try Self.server([Self.s3Error(409, "ConditionalRequestConflict"), .init(200, "")])
        try await Self.s3(conflictThenOK).putIfAbsent("m", [1])
        #expect(conflictThenOK.requests.count == 2)
        #expect(conflictThenOK.requests.allSatisfy { $0.headers["if-none-match"] == "*" })

        let alwaysConflict = try Self.server([Self.s3Error(409, "ConditionalRequestConflict")])
        let c = await #expect(throws: StoreError.self) { try await Self.s3(alwaysConflict).putIfAbsent("m", [1]) }
        #expect(c?.code == .conflict)
        #expect(alwaysConflict.requests.count == 3)

        let taken = try Self.server([Self.s3Error(412, "PreconditionFailed")])
        let p = await #expect(throws: StoreError.self) { try await Self.s3(taken).putIfAbsent("m", [1]) }
        #expect(p?.code == .alreadyExists)
        #expect(taken.requests.count == 1)
    }

    @Test func otherClientErrorsAreNotRetried() async throws {
        for (status, code, kind) in [(403, "AccessDenied", StoreError.Code.accessDenied), (400, "InvalidArgument", .invalidArgument),
                                     (404, "NoSuchKey", .notFound)] {
            let server = try Self.server([Self.s3Error(status, code)])
            let e = await #expect(throws: StoreError.self) { _ = try await Self.s3(server).read("x") }
            #expect(e?.code == kind, "\(code)")
            #expect(e?.serviceCode == code)
            #expect(server.requests.count == 1, "\(code) was retried")
        }
    }

    @Test func connectionResetsAndTimeoutsAreRetried() async throws {
        let reset = try Self.server([.dropConnection, .init(200, "ok")])
        #expect(try await Self.s3(reset).read("x") == Array("ok".utf8))
        #expect(reset.requests.count == 2)

        var slow = LocalHTTPServer.Response(200, "late")
        slow.delaySeconds = 1.5
        let timeout = try Self.server([slow, .init(200, "ok")])
        #expect(try await Self.s3(timeout, timeout: 0.5).read("x") == Array("ok".utf8))
        // The server answers one connection at a time, so an attempt queued behind the slow
        // one may time out too: at least one retry, however many.
        #expect(timeout.requests.count >= 2)

        let down = try Self.server([.dropConnection])
        let e = await #expect(throws: StoreError.self) { _ = try await Self.s3(down, attempts: 2).read("x") }
        #expect(e?.code == .network)
        #expect(down.requests.count == 2)
    }

    @Test func cancellingTheTaskAbortsATransferInFlight() async throws {
        var slow = LocalHTTPServer.Response(200, "too late")
        slow.delaySeconds = 5
        let server = try Self.server([slow])
        let store = try Self.s3(server)
        let task = Task { try await store.read("x") }
        while server.requests.isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }  // the request is on the wire
        task.cancel()
        let e = await #expect(throws: StoreError.self) { _ = try await task.value }
        #expect(e?.code == .cancelled, "\(String(describing: e))")
        #expect(server.requests.count == 1, "a cancelled request was retried")
    }

    @Test func dynamoDBThrottlingIsRetriedOverTheJSONProtocol() async throws {
        let throttled = LocalHTTPServer.Response(
            400, #"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#,
            headers: [("x-amzn-RequestId", "DDB-1")])
        let server = try Self.server([throttled, .init(200, #"{"Items":[],"Count":0}"#)])
        var configuration = DynamoDBConfiguration(table: "commits", endpoint: server.url,
                                                  credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        configuration.retry = Self.quick(3)  // attempts alone decide: a loaded run once spent 25 s on the first
        let store = try DynamoDBCommitStore(objects: MemoryBlobStore(), baseURI: "mem://db", configuration: configuration)
        #expect(try await store.latestVersion() == nil)
        #expect(server.requests.count == 2)
        let query = try #require(server.requests.last)
        #expect(query.headers["x-amz-target"] == "DynamoDB_20120810.Query")
        #expect(query.headers["content-type"] == "application/x-amz-json-1.0")
        #expect(query.headers["authorization"]?.contains("/us-east-1/dynamodb/aws4_request") == true)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(query.body)) as? [String: Any])
        #expect(body["ConsistentRead"] as? Bool == true)
        #expect(body["ScanIndexForward"] as? Bool == false)
        #expect(body["Limit"] as? Int == 1)

        let failed = LocalHTTPServer.Response(
            400, #"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"taken"}"#)
        // Another writer's item: its staged object is not this attempt's.
        let theirs = LocalHTTPServer.Response(200, """
            {"Item":{"base_uri":{"S":"mem://db/"},"version":{"N":"1"},"manifest":{"S":"MANIFEST-00000000000000000001.bin"},            "staged":{"S":"staged_MANIFEST-00000000000000000001-theirs.bin"},"finalised":{"BOOL":true}}}
            """)
        let once = try Self.server([failed, theirs])
        let objects = MemoryBlobStore()
        let s = try DynamoDBCommitStore(objects: objects, baseURI: "mem://db",
                                        configuration: DynamoDBConfiguration(table: "commits", endpoint: once.url))
        let e = await #expect(throws: StoreError.self) { try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", [1]) }
        #expect(e?.code == .alreadyExists)
        #expect(once.requests.map { $0.headers["x-amz-target"] ?? "" } == ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.GetItem"],
                "a failed condition is not retried; the item is read once to tell a lost race from a lost answer")
        #expect(try await objects.list(prefix: "").isEmpty, "the losing attempt's staged manifest was left behind")
    }

    // MARK: per-class retry budgets

    @Test func eachOperationClassHasItsOwnAttemptBudget() async throws {
        let n = 4
        let failures = [LocalHTTPServer.Response](repeating: Self.s3Error(503, "SlowDown"), count: n)
        // Reads: n failures then success needs n + 1 attempts.
        var retry = Self.quick(1)
        retry.reads.attempts = n + 1
        let enough = try Self.server(failures + [.init(200, "ok")])
        #expect(try await Self.s3(enough, retry: retry).read("x") == Array("ok".utf8))
        #expect(enough.requests.count == n + 1)

        retry.reads.attempts = n
        let short = try Self.server(failures + [.init(200, "ok")])
        let e = await #expect(throws: StoreError.self) { _ = try await Self.s3(short, retry: retry).read("x") }
        #expect(e?.code == .throttled)
        #expect(short.requests.count == n)
        #expect(e?.message.contains("after \(n) attempts") == true, "\(String(describing: e))")

        // The other classes keep their own budgets: writes 2, conditional writes 3, listings 5.
        retry = Self.quick(1)
        retry.writes.attempts = 2
        retry.conditionalWrites.attempts = 3
        retry.listings.attempts = 5
        let always = try Self.server([Self.s3Error(503, "SlowDown")])
        let store = try Self.s3(always, retry: retry)
        await #expect(throws: StoreError.self) { try await store.put("o", [1]) }
        #expect(always.requests.count == 2)
        await #expect(throws: StoreError.self) { try await store.putIfAbsent("m", [1]) }
        #expect(always.requests.count == 5)
        await #expect(throws: StoreError.self) { _ = try await store.list(prefix: "") }
        #expect(always.requests.count == 10)
        await #expect(throws: StoreError.self) { _ = try await store.read("x") }
        #expect(always.requests.count == 11)
    }

    @Test func theRetryTimeBudgetStopsRetriesBeforeTheAttemptsRunOut() async throws {
        // A zero time budget: the first retry would already start too late.
        var retry = Self.quick(1000)
        retry.reads.maxRetryTime = .zero
        let zero = try Self.server([Self.s3Error(503, "SlowDown")])
        let e = await #expect(throws: StoreError.self) { _ = try await Self.s3(zero, retry: retry).read("x") }
        #expect(e?.code == .throttled)
        #expect(zero.requests.count == 1)
        #expect(e?.message.contains("retry time") == true, "\(String(describing: e))")

        // A small one with backoff of up to 20 ms: far fewer than 1000 attempts.
        retry.reads.maxRetryTime = .milliseconds(200)
        retry.baseDelay = .milliseconds(20)
        retry.maxDelay = .milliseconds(20)
        let small = try Self.server([Self.s3Error(503, "SlowDown")])
        await #expect(throws: StoreError.self) { _ = try await Self.s3(small, retry: retry).read("x") }
        #expect(small.requests.count >= 1)
        #expect(small.requests.count < 1000)
    }

    @Test func cancellingDuringBackoffStopsWaitingAtOnce() async throws {
        var retry = RetryConfiguration()
        retry.setAttempts(2)
        retry.baseDelay = .seconds(600)  // a backoff no test would sit out
        retry.maxDelay = .seconds(600)
        retry.reads.maxRetryTime = .seconds(3600)
        let server = try Self.server([Self.s3Error(503, "SlowDown")])
        let store = try Self.s3(server, retry: retry)
        let task = Task { try await store.read("x") }
        while server.requests.isEmpty { try await Task.sleep(nanoseconds: 10_000_000) }
        try await Task.sleep(nanoseconds: 50_000_000)  // the answer is in and the backoff has begun
        task.cancel()
        // Without cancellation the task would wait out the backoff and end `.throttled`.
        let e = await #expect(throws: StoreError.self) { _ = try await task.value }
        #expect(e?.code == .cancelled, "\(String(describing: e))")
    }

    @Test func theDefaultsCarryReadsThroughThirtyPercentFaults() async throws {
        // 30 % of answers are 503 SlowDown, chosen by a seeded generator.
        let rng = Locked(SeededRNG(seed: 15))
        let server = try LocalHTTPServer { _ in
            rng.withLock { Double.random(in: 0..<1, using: &$0) } < 0.3 ? Self.s3Error(503, "SlowDown") : .init(200, "ok")
        }
        var retry = RetryConfiguration()  // the default budgets, with short waits for a quick test
        retry.baseDelay = .milliseconds(1)
        retry.maxDelay = .milliseconds(4)
        let store = try Self.s3(server, retry: retry)
        var read = 0
        for i in 0..<200 {
            #expect(try await store.read("x\(i)") == Array("ok".utf8))
            read += 1
        }
        #expect(read == 200)
        #expect(server.requests.count > 200, "no fault was injected")
        #expect(RetryConfiguration().reads.attempts >= 8)
    }

    @Test func theRetryQuotaIsReturnedWhenARetriedRequestSucceeds() {
        var quota = RetryQuota()
        // A request that needed two retries and then succeeded costs at most one retry.
        let first = quota.acquire(timeout: false)
        let last = quota.acquire(timeout: false)
        quota.recordSuccess(lastRetryCost: last)
        #expect(quota.tokens == RetryQuota.capacity - first)
        // Many requests that each succeed after one retry never drain it.
        for _ in 0..<1000 {
            let cost = quota.acquire(timeout: false)
            #expect(cost > 0)
            quota.recordSuccess(lastRetryCost: cost)
        }
        #expect(quota.tokens >= RetryQuota.capacity - RetryQuota.retryCost)
    }

    @Test func unusableRetrySettingsAreRejected() {
        var c = S3Configuration(bucket: "b", endpoint: "http://127.0.0.1:1")
        c.retry.listings.attempts = 0
        let e = #expect(throws: StoreError.self) { _ = try S3Store(c) }
        #expect(e?.code == .invalidArgument)
        #expect(e?.message.contains("listing") == true)
    }

    @Test func awsMaxAttemptsSetsEveryClassesAttempts() throws {
        let env = AWSEnvironment(variables: ["AWS_MAX_ATTEMPTS": "7"])
        let c = try S3Configuration.fromEnvironment(bucket: "b", environment: env)
        #expect(StoreOperationClass.allCases.map { c.retry[$0].attempts } == [7, 7, 7, 7])
        #expect(DynamoDBConfiguration.fromEnvironment(table: "t", environment: env).retry.conditionalWrites.attempts == 7)
        #expect(try S3Configuration.fromEnvironment(bucket: "b", environment: AWSEnvironment(variables: [:])).retry
                == RetryConfiguration())
        let e = #expect(throws: StoreError.self) {
            _ = try S3Configuration.fromEnvironment(bucket: "b", environment: AWSEnvironment(variables: ["AWS_MAX_ATTEMPTS": "0"]))
        }
        #expect(e?.code == .invalidArgument)
        #expect(e?.message.contains("AWS_MAX_ATTEMPTS") == true)
    }
}
