import Foundation
import Stores
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
        c.requestTimeoutSeconds = timeout
        return try S3Store(c)
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
        let store = try DynamoDBCommitStore(objects: MemoryBlobStore(), baseURI: "mem://db",
                                            configuration: DynamoDBConfiguration(table: "commits", endpoint: server.url,
                                                                                 credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s")))
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
}
