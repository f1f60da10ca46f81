import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// `S3ExpressStore` against the S3 Express emulating proxy (Tests/s3express-proxy) in front
/// of moto: the proxy checks directory-bucket names, `CreateSession`, session tokens and
/// signatures made with session keys (service `s3express`), refuses partial-name listings and
/// start-after, and shuffles listings. Serialized: one test changes the proxy's session length.
@Suite(.serialized) struct S3ExpressProxyTests {
    /// A directory bucket (created on moto behind the proxy) and a store on it through the proxy.
    static func store(_ tag: String, prefix: String = "db/", secret: String? = nil, refreshWindow: TimeInterval = 60,
                      pageSize: Int = 1000, mode: S3ExpressStore.SessionMode = .readWrite, bucket: String? = nil) async throws -> S3ExpressStore {
        let express = try TestEnvironment.expressEndpoint()
        let bucket = bucket ?? TestEnvironment.uniqueDirectoryBucket(tag)
        try await S3Store(S3Configuration(bucket: bucket, endpoint: try TestEnvironment.s3Endpoint(),
                                          credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")))
            .createBucketIfNeeded()
        var config = S3Configuration(bucket: bucket, prefix: prefix, endpoint: express.endpoint,
                                     credentials: S3Credentials(accessKeyID: express.key, secretAccessKey: secret ?? express.secret))
        config.listPageSize = pageSize
        config.maxAttempts = 2
        config.multipartThreshold = 6 << 20
        config.multipartPartSize = 5 << 20
        return try S3ExpressStore(config, sessionMode: mode, sessionRefreshWindow: refreshWindow)
    }

    @Test func everyOperationRunsOnOneSession() async throws {
        let before = try TestEnvironment.expressProxyAdmin("stats")
        let s = try await Self.store("ops")
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for name in ["plain.bin", "with space.bin", "plus+equals=.bin", "ünïcødé ✓.bin"] {
            try await s.put(name, data)
            #expect(try await s.read(name) == data, "\(name)")
            #expect(try await s.read(name, range: 100..<300) == Array(data[100..<300]))
            #expect(try await s.size(name) == 10_000)
        }
        try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", [1])
        let taken = await #expect(throws: StoreError.self) { try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", [2]) }
        #expect(taken?.code == .alreadyExists)
        #expect(try await s.read("MANIFEST-00000000000000000001.bin") == [1])
        // A large object goes up in parts, signed with the session too.
        let big = (0..<(13 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 3) }
        try await s.putIfAbsent("segment_big.bin", big)
        #expect(try await s.read("segment_big.bin", range: 12_000_000..<12_000_100) == Array(big[12_000_000..<12_000_100]))
        #expect(try await s.pendingMultipartUploads().isEmpty)
        try await s.delete("plain.bin")
        await #expect(throws: StoreError.self) { _ = try await s.read("plain.bin") }
        #expect(s.sessionsCreated == 1, "every request should share one session")
        let after = try TestEnvironment.expressProxyAdmin("stats")
        #expect(after["sessions_created"]! - before["sessions_created"]! == 1)
        #expect(after["signature_rejections"] == before["signature_rejections"], "the proxy rejected a signature")
    }

    /// moto closes every connection; the proxy keeps them open, so it shows libcurl's reuse.
    @Test func sequentialRequestsReuseOneConnection() async throws {
        let s = try await Self.store("reuse")
        try await s.put("a.bin", [1, 2, 3])
        let before = try TestEnvironment.expressProxyAdmin("stats")
        for _ in 0..<30 { #expect(try await s.read("a.bin", range: 1..<3) == [2, 3]) }
        let after = try TestEnvironment.expressProxyAdmin("stats")
        #expect(after["requests_forwarded"]! - before["requests_forwarded"]! == 30)
        #expect(after["connections_accepted"]! - before["connections_accepted"]! <= 1, "30 requests opened \(after["connections_accepted"]! - before["connections_accepted"]!) connections")
    }

    @Test func listingsAreFilteredAndSortedHereBecauseDirectoryBucketsCannot() async throws {
        let s = try await Self.store("list", pageSize: 7)
        var names: [String] = []
        for v in [3, 1, 12, 7, 2] { names.append("MANIFEST-\(String(repeating: "0", count: 18))\(v < 10 ? "0" : "")\(v).bin") }
        for i in 0..<10 { names.append("segment_w-\(i).bin") }
        for i in 0..<6 { names.append("pkindex_\(i).bin") }
        for n in names.shuffled() { try await s.put(n, [1]) }
        let before = try TestEnvironment.expressProxyAdmin("stats")["listings_shuffled"]!
        let all = try await s.list(prefix: "").map(\.name)
        #expect(all == names.sorted())
        let manifests = try await s.list(prefix: "MANIFEST-").map(\.name)
        #expect(manifests == names.filter { $0.hasPrefix("MANIFEST-") }.sorted())
        let after3 = try await s.list(prefix: "MANIFEST-", startAfter: manifests[2]).map(\.name)
        #expect(after3 == Array(manifests.dropFirst(3)))
        #expect(try await s.list(prefix: "segment_w-1").map(\.name) == ["segment_w-1.bin"])
        #expect(try TestEnvironment.expressProxyAdmin("stats")["listings_shuffled"]! > before, "the proxy did not shuffle")
    }

    @Test func anExpiredSessionIsReplacedAndTheRequestSucceeds() async throws {
        let s = try await Self.store("expired")
        try await s.put("a.bin", [1, 2, 3])
        let before = try TestEnvironment.expressProxyAdmin("stats")
        _ = try TestEnvironment.expressProxyAdmin("expire-sessions", post: true)
        #expect(try await s.read("a.bin") == [1, 2, 3])
        #expect(s.sessionsCreated == 2)
        // Sizes too (a HEAD's error has no body to say why; sizes use a one-byte GET here).
        _ = try TestEnvironment.expressProxyAdmin("expire-sessions", post: true)
        #expect(try await s.size("a.bin") == 3)
        #expect(s.sessionsCreated == 3)
        let after = try TestEnvironment.expressProxyAdmin("stats")
        #expect(after["expired_rejections"]! > before["expired_rejections"]!, "the proxy never said the session expired")
    }

    @Test func sessionsAreRenewedBeforeTheyExpire() async throws {
        _ = try TestEnvironment.expressProxyAdmin("session-seconds/3", post: true)
        defer { _ = try? TestEnvironment.expressProxyAdmin("session-seconds/300", post: true) }
        let s = try await Self.store("renew", refreshWindow: 1)
        try await s.put("a.bin", [7])
        let before = try TestEnvironment.expressProxyAdmin("stats")
        try await Task.sleep(nanoseconds: 2_300_000_000)  // 0.7 s left: inside the 1 s window
        #expect(try await s.read("a.bin") == [7])
        #expect(s.sessionsCreated == 2, "a session about to expire should have been replaced")
        let after = try TestEnvironment.expressProxyAdmin("stats")
        #expect(after["expired_rejections"] == before["expired_rejections"], "renewed too late: the proxy saw an expired session")
    }

    @Test func readOnlySessionsReadAndAreRefusedWrites() async throws {
        let writer = try await Self.store("readonly")
        let db = try await Vecgo.open(.remote(writer), .create(dimension: 2, metric: .l2))
        try await db.upsert(id: 1, [1, 2])
        try await db.close()
        let store = try await Self.store("readonly", mode: .readOnly, bucket: writer.configuration.bucket)
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(try await reader.search([1, 2], k: 1).first?.id == 1)
        let e = await #expect(throws: StoreError.self) { try await store.put("x.bin", [1]) }
        #expect(e?.code == .accessDenied, "\(String(describing: e))")
    }

    @Test func aWrongSecretIsAccessDeniedAndNeverShown() async throws {
        let secret = "wrong-secret-\(UInt32.random(in: 0...UInt32.max))"
        let s = try await Self.store("denied", secret: secret)
        let error = await #expect(throws: StoreError.self) { try await s.put("x.bin", [1]) }
        #expect(error?.code == .accessDenied, "\(String(describing: error))")
        #expect(error?.serviceCode == "SignatureDoesNotMatch")
        for text in ["\(String(describing: error))", String(reflecting: error as Any), "\(s)", String(reflecting: s)] {
            #expect(!text.contains(secret), "the secret leaked: \(text)")
        }
    }

    @Test func theEngineRunsOnADirectoryBucket() async throws {
        let s = try await Self.store("engine")
        let writer = try await Vecgo.open(.remote(s), .create(dimension: 8, metric: .l2))
        for i in 0..<300 { try await writer.upsert(id: UInt64(i), (0..<8).map { Float(i * 8 + $0) }) }
        try await writer.commit()
        let other = try await Vecgo.open(.remote(s))
        for i in 300..<400 { try await other.upsert(id: UInt64(i), (0..<8).map { Float(i * 8 + $0) }) }
        try await other.commit()  // built on version 1: no race
        for i in 400..<450 { try await writer.upsert(id: UInt64(i), (0..<8).map { Float(i * 8 + $0) }) }
        try await writer.commit()  // loses the race for version 2, rebases on it
        try await writer.close()
        try await other.close()
        let reader = try await Vecgo.open(.remote(s), .readOnly)
        #expect(await reader.version == 3)
        let all = try await reader.search(Array(repeating: 0, count: 8), k: 1000)
        #expect(all.count == 450)
        #expect(Set(all.map(\.id)) == Set(0..<450))
        let hit = try await reader.search((0..<8).map { Float(420 * 8 + $0) }, k: 1)
        #expect(hit.first?.id == 420)
        #expect(try await Vecgo.verify(s).ok)
    }
}
