import Foundation
@testable import Stores
import Testing
import _VecgoTestSupport

/// Our S3 client against moto over HTTP.
@Suite struct S3StoreMotoTests {
    static func store(_ tag: String, prefix: String = "p/", pageSize: Int = 1000, attempts: Int = 3) async throws -> S3Store {
        var config = S3Configuration(bucket: TestEnvironment.uniqueBucket(tag), prefix: prefix,
                                     endpoint: try TestEnvironment.s3Endpoint(),
                                     credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
        config.listPageSize = pageSize
        config.maxAttempts = attempts
        let s = try S3Store(config)
        try await s.createBucketIfNeeded()
        return s
    }

    /// The MinIO configuration against an S3-compatible server that is not AWS (moto here):
    /// path-style URLs, plain HTTP, fixed keys.
    @Test func theMinIOConfigurationWorksAgainstAnyS3CompatibleServer() async throws {
        let config = S3Configuration.minIO(endpoint: try TestEnvironment.s3Endpoint(), bucket: TestEnvironment.uniqueBucket("minio"),
                                           prefix: "vecgo", accessKey: "minioadmin", secretKey: "minioadmin")
        #expect(config.addressing == .pathStyle)
        #expect(config.prefix == "vecgo/")
        let s = try S3Store(config)
        try await s.createBucketIfNeeded()
        try await s.put("segment_1.bin", [1, 2, 3])
        try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", [4])
        await #expect(throws: StoreError.self) { try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", [5]) }
        #expect(try await s.list(prefix: "").map(\.name) == ["MANIFEST-00000000000000000001.bin", "segment_1.bin"])
        #expect(try await s.read("segment_1.bin", range: 1..<3) == [2, 3])
    }

    @Test func putReadRangesAndSizes() async throws {
        let s = try await Self.store("rw")
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try await s.put("obj", data)
        #expect(try await s.read("obj") == data)
        #expect(try await s.read("obj", range: 100..<200) == Array(data[100..<200]))
        #expect(try await s.read("obj", range: 9_990..<20_000) == Array(data[9_990...]))
        #expect(try await s.read("obj", range: 10_000..<20_000) == [])
        #expect(try await s.size("obj") == 10_000)
        try await s.createBucketIfNeeded()  // again: already ours, fine
    }

    @Test func missingObjectsAreNotFound() async throws {
        let s = try await Self.store("missing")
        for op in ["read", "size"] {
            do {
                if op == "read" { _ = try await s.read("nope") } else { _ = try await s.size("nope") }
                Issue.record("\(op) of a missing object succeeded")
            } catch let e as StoreError {
                #expect(e.code == .notFound, "\(op): \(e)")
            }
        }
        try await s.delete("nope")  // deleting nothing is fine
    }

    @Test func conditionalPutHasOneWinner() async throws {
        let s = try await Self.store("cond")
        try await s.putIfAbsent("MANIFEST-1", [1])
        do {
            try await s.putIfAbsent("MANIFEST-1", [2])
            Issue.record("a second create-if-absent succeeded")
        } catch let e as StoreError {
            #expect(e.code == .alreadyExists)
            #expect(e.httpStatus == 412)
        }
        #expect(try await s.read("MANIFEST-1") == [1])
        let wins = await withTaskGroup(of: Bool.self) { g in
            for i in 0..<8 { g.addTask { (try? await s.putIfAbsent("MANIFEST-2", [UInt8(i)])) != nil } }
            return await g.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    @Test func listingPagesStartsAfterAndStaysUnderThePrefix() async throws {
        let s = try await Self.store("list", pageSize: 7)
        let names = (0..<20).map { String(format: "MANIFEST-%020d.bin", $0) } + ["segment_a.bin"]
        for n in names { try await s.put(n, [1, 2, 3]) }
        let all = try await s.list(prefix: "")
        #expect(all.map(\.name) == names.sorted())
        #expect(all.allSatisfy { $0.size == 3 })
        #expect(try await s.list(prefix: "MANIFEST-").count == 20)
        let after = try await s.list(prefix: "MANIFEST-", startAfter: names[14])
        #expect(after.map(\.name) == Array(names[15..<20]))
        // Another store on the same bucket without the prefix sees the objects under "p/".
        var config = s.configuration
        config.prefix = ""
        #expect(try await S3Store(config).list(prefix: "p/MANIFEST-").count == 20)
    }

    @Test func awkwardKeysSurviveTheRoundTrip() async throws {
        let s = try await Self.store("keys")
        for name in ["a b.bin", "plus+sign.bin", "eq=ual.bin", "ünïcødé-🙂.bin", "dir/sub dir/x&y.bin"] {
            try await s.put(name, Array(name.utf8))
            #expect(try await s.read(name) == Array(name.utf8), "\(name)")
            #expect(try await s.list(prefix: "").contains { $0.name == name }, "\(name)")
            try await s.delete(name)
        }
        #expect(try await s.list(prefix: "").isEmpty)
    }

    @Test func largeObjectsGoUpInPartsAndNothingIsLeftBehind() async throws {
        var config = S3Configuration(bucket: TestEnvironment.uniqueBucket("multipart"), prefix: "mp/",
                                     endpoint: try TestEnvironment.s3Endpoint(),
                                     credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
        config.multipartThreshold = 6 << 20
        config.multipartPartSize = 5 << 20
        let s = try S3Store(config)
        try await s.createBucketIfNeeded()
        var rng = SeededRNG(seed: 3)
        let big = (0..<(12 << 20) + 12_345).map { _ in UInt8.random(in: 0...255, using: &rng) }  // 3 parts
        try await s.put("segment_big.bin", big)
        #expect(try await s.size("segment_big.bin") == UInt64(big.count))
        #expect(try await s.read("segment_big.bin") == big)
        #expect(try await s.read("segment_big.bin", range: 5_242_000..<5_243_000) == Array(big[5_242_000..<5_243_000]))
        // Long ranges are read as parallel parts (1 MiB here), clipped at the end like one GET.
        var splitting = config
        splitting.parallelReadPartSize = 1 << 20
        let split = try S3Store(splitting)
        #expect(try await split.read("segment_big.bin", range: 1_000..<4_500_000) == Array(big[1_000..<4_500_000]))
        #expect(try await split.read("segment_big.bin", range: 10_000_000..<20_000_000) == Array(big[10_000_000...]))
        // A create-if-absent in parts: the first wins, the second is refused, nothing lingers.
        try await s.putIfAbsent("MANIFEST-big.bin", big)
        let again = await #expect(throws: StoreError.self) { try await s.putIfAbsent("MANIFEST-big.bin", Array(big.reversed())) }
        #expect(again?.code == .alreadyExists)
        #expect(try await s.read("MANIFEST-big.bin") == big)
        let lingering = try await s.pendingMultipartUploads()
        #expect(lingering.isEmpty, "\(lingering)")
        // A cancelled upload is aborted.
        let task = Task { try await s.put("segment_cancelled.bin", big) }
        try await Task.sleep(nanoseconds: 30_000_000)
        task.cancel()
        let outcome = await task.result
        #expect(throws: StoreError.self, "the upload finished before the cancel: nothing was tested") { try outcome.get() }
        #expect((try? await s.size("segment_cancelled.bin")) == nil)
        #expect(try await s.pendingMultipartUploads().isEmpty, "an interrupted upload left parts behind")
    }

    /// Uploads carry a CRC32C that the server keeps and reports (issue 15, part 1), and
    /// whole-object reads that check it against the body still succeed.
    @Test func uploadsCarryACRC32CTheServerReports() async throws {
        let s = try await Self.store("crc32c")
        try await s.put("segment_1.bin", Array("hello".utf8))
        try await s.putIfAbsent("MANIFEST-00000000000000000001.bin", Array("123456789".utf8))
        #expect(try await s.storedCRC32C("segment_1.bin") == "mnG7TA==")  // botocore's value for "hello"
        #expect(try await s.storedCRC32C("MANIFEST-00000000000000000001.bin") == "4waSgw==")  // 0xE3069283
        #expect(try await s.read("segment_1.bin") == Array("hello".utf8))
        #expect(try await s.read("MANIFEST-00000000000000000001.bin") == Array("123456789".utf8))

        var config = s.configuration
        config.multipartThreshold = 5 << 20
        config.multipartPartSize = 5 << 20
        let parts = try S3Store(config)
        let big = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131) }  // 3 parts
        try await parts.put("segment_big.bin", big)
        // A composite checksum of the parts' checksums (S3 writes it `…-3`; moto's HEAD drops
        // the suffix, its GET keeps it), which a read does not check against the body.
        let stored = try #require(try await parts.storedCRC32C("segment_big.bin"))
        #expect(stored.hasSuffix("-3") || stored != TransferChecksum.crc32c(big), "\(stored)")
        #expect(try await parts.read("segment_big.bin") == big)
    }

    @Test func parallelReadsShareTheClient() async throws {
        let s = try await Self.store("parallel")
        let data = (0..<64_000).map { UInt8(truncatingIfNeeded: $0) }
        try await s.put("big", data)
        let ok = try await withThrowingTaskGroup(of: Bool.self) { g in
            for i in 0..<32 {
                g.addTask { try await s.read("big", range: UInt64(i * 1000)..<UInt64(i * 1000 + 1000)) == Array(data[i * 1000..<i * 1000 + 1000]) }
            }
            return try await g.reduce(true) { $0 && $1 }
        }
        #expect(ok)
    }

    @Test func anUnreachableEndpointIsANetworkErrorAfterRetries() async throws {
        let port = try TestEnvironment.unusedPort()
        var config = S3Configuration(bucket: "nowhere", endpoint: "http://127.0.0.1:\(port)",
                                     credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "very-secret-value"))
        config.maxAttempts = 2
        config.retry.reads.maxRetryTime = .seconds(3600)  // attempts alone decide, however loaded the machine
        do {
            _ = try await S3Store(config).read("x")
            Issue.record("a read from a closed port succeeded")
        } catch let e as StoreError {
            #expect(e.code == .network)
            #expect(e.message.contains("2 attempts"))
            #expect(!"\(e)".contains("very-secret-value"))
        }
    }
}
