// Stalled transfers on the wire: an attempt during which nothing moves is abandoned and retried
// (the stall timeout), and no attempt outlasts the retry time left (the per-attempt limit).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Stores
import Testing
import _VecgoTestSupport

/// A local HTTP server that answers late, stops mid-body or never answers, and the attempts an
/// ``S3Store`` makes against it. The request timeout stays at a minute or more, so without the
/// stall timeout and the per-attempt limit each of these reads would sit in its first attempt.
@Suite struct StallTimeoutTests {
    /// An answer that never comes (the connection stays open until the server goes).
    static var never: LocalHTTPServer.Response {
        var r = LocalHTTPServer.Response(200, "never")
        r.delaySeconds = 3600
        return r
    }

    /// A store whose attempts are abandoned after `stall` seconds without a byte moving, with a
    /// read retry time of `retryTime` and waits of 1 ms between attempts.
    static func s3(_ server: LocalHTTPServer, stall: Double, retryTime: Duration, attempts: Int = 10,
                   requestTimeout: Double = 60) throws -> S3Store {
        var c = S3Configuration(bucket: "b", endpoint: server.url, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.retry.setAttempts(attempts)
        c.retry.reads.maxRetryTime = retryTime
        c.retry.baseDelay = .milliseconds(1)
        c.retry.maxDelay = .milliseconds(1)
        c.retry.minimumAttemptTime = .seconds(1)
        c.stallTimeoutSeconds = stall
        c.requestTimeoutSeconds = requestTimeout
        return try S3Store(c)
    }

    @Test func anAttemptThatGetsNoAnswerIsAbandonedAndRetried() async throws {
        let server = try RetryTests.server([Self.never, .init(200, "ok")])
        // Without the stall timeout the first attempt waits out the retry time (the request
        // timeout is longer): the read fails after one attempt. The retry time is generous so a
        // loaded machine cannot use it up before the second attempt.
        let store = try Self.s3(server, stall: 1, retryTime: .seconds(300), requestTimeout: 600)
        #expect(try await store.read("x") == Array("ok".utf8))
        #expect(server.requests.count == 2)
    }

    @Test func aTransferThatStallsMidBodyIsAbandonedAndRetried() async throws {
        let body = String(repeating: "v", count: 4000)
        var partial = LocalHTTPServer.Response(200, body)
        partial.stallAfterBytes = 1000  // the head and part of the body, then nothing
        let server = try RetryTests.server([partial, .init(200, body)])
        let store = try Self.s3(server, stall: 1, retryTime: .seconds(300), requestTimeout: 600)
        #expect(try await store.read("x") == Array(body.utf8))
        #expect(server.requests.count == 2)
    }

    @Test func aServerThatNeverAnswersUsesTheRetryTimeOnSeveralAttempts() async throws {
        let server = try RetryTests.server([Self.never])
        // 60 s: a full parallel suite has delayed these answers by tens of seconds (most likely
        // its CPU-bound tests holding the cooperative pool; README, "Not done yet"); the retry
        // time must still hold a second attempt then.
        let store = try Self.s3(server, stall: 1, retryTime: .seconds(60), attempts: 1000, requestTimeout: 600)
        let e = await #expect(throws: StoreError.self) { _ = try await store.read("x") }
        #expect(e?.code == .network, "\(String(describing: e))")
        #expect(e?.message.contains("retry time of 60.00 s") == true, "\(String(describing: e))")
        #expect(e?.message.contains("RetryConfiguration") == true)
        #expect(e?.message.contains("1 s with no byte moving") == true, "\(String(describing: e))")
        // Each attempt was abandoned after about a second of silence, not after the 60 s
        // request timeout: the retry time held more than one.
        #expect(server.requests.count >= 2, "\(String(describing: e))")
        #expect(e?.message.contains("after 1 attempt ") == false, "\(String(describing: e))")
    }

    @Test func anUploadTheServerStopsTakingIsAbandonedAndRetried() async throws {
        // A port that completes connections but never accepts them: the kernel takes the
        // request's first bytes into its buffers, then nothing moves.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(s >= 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0 && listen(s, 16) == 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(s, $0, &len) } }
        var c = S3Configuration(bucket: "b", endpoint: "http://127.0.0.1:\(UInt16(bigEndian: addr.sin_port))",
                                credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.retry.writes = .init(attempts: 2, maxRetryTime: .seconds(300))
        c.retry.baseDelay = .milliseconds(1)
        c.retry.maxDelay = .milliseconds(1)
        c.stallTimeoutSeconds = 1
        c.requestTimeoutSeconds = 600
        let store = try S3Store(c)  // without the stall timeout, one attempt only (it takes the whole retry time)
        let e = await #expect(throws: StoreError.self) { try await store.put("big", [UInt8](repeating: 7, count: 32 << 20)) }
        #expect(e?.code == .network, "\(String(describing: e))")
        #expect(e?.message.contains("after 2 attempts") == true, "\(String(describing: e))")
        #expect(e?.message.contains("1 s with no byte moving") == true, "\(String(describing: e))")
    }

    @Test(.timeLimit(.minutes(1)))
    func noAttemptOutlastsTheRetryTimeLeft() async throws {
        // No stall timeout and a 10-minute request timeout: only the per-attempt limit (the
        // 2 s of retry time left) ends the attempt; without it the test runs into its limit.
        let server = try RetryTests.server([Self.never])
        let store = try Self.s3(server, stall: 0, retryTime: .seconds(2), requestTimeout: 600)
        let e = await #expect(throws: StoreError.self) { _ = try await store.read("x") }
        #expect(e?.code == .network, "\(String(describing: e))")
        #expect(e?.message.contains("retry time of 2.00 s") == true, "\(String(describing: e))")
        #expect(e?.message.contains(" s in all") == true, "\(String(describing: e))")
        #expect(e?.message.contains("600.00 s in all") == false, "\(String(describing: e))")
        // One attempt cut at the retry time, or a second (its 1 s floor) when the first ended
        // a hair before it.
        #expect((1...2).contains(server.requests.count), "\(server.requests.count) requests")
    }

    @Test func anAttemptsTimeLimitIsTheRetryTimeLeftWithAFloor() {
        let policy = RetryPolicy(maxAttempts: 10, minimumAttemptMillis: 10_000)
        // The request timeout when the retry time left is longer.
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 60_000, remainingMillis: 90_000) == 60_000)
        // Cut to the retry time left.
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 60_000, remainingMillis: 20_000) == 20_000)
        // Never below the floor, even with nothing left...
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 60_000, remainingMillis: 500) == 10_000)
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 60_000, remainingMillis: -3_000) == 10_000)
        // ...and never above the request timeout, however low.
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 2_000, remainingMillis: 500) == 2_000)
        // No request timeout: the retry time left (or the floor) is the only limit.
        #expect(policy.attemptTimeoutMillis(requestTimeoutMillis: 0, remainingMillis: 20_000) == 20_000)
        // The configuration's floor reaches the policy.
        var retry = RetryConfiguration()
        retry.minimumAttemptTime = .milliseconds(1500)
        #expect(RetryPolicy(retry, .read).attemptTimeoutMillis(requestTimeoutMillis: 60_000, remainingMillis: 0) == 1500)
    }

    @Test func unusableTimeoutsAreRejected() {
        for (path, value) in [(\S3Configuration.stallTimeoutSeconds, -1.0), (\.requestTimeoutSeconds, .nan),
                              (\.connectTimeoutSeconds, .infinity)] {
            var c = S3Configuration(bucket: "b", endpoint: "http://127.0.0.1:1")
            c[keyPath: path] = value
            let e = #expect(throws: StoreError.self) { _ = try S3Store(c) }
            #expect(e?.code == .invalidArgument)
        }
        var retry = RetryConfiguration()
        retry.minimumAttemptTime = .zero
        let e = #expect(throws: StoreError.self) { try retry.validate() }
        #expect(e?.message.contains("minimum attempt time") == true)
    }
}
