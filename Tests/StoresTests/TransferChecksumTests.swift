/// Upload and download checksums (`x-amz-checksum-crc32c`) on the wire, against a local HTTP
/// server that damages bodies: issue 15, part 1 (the store side).
import Foundation
@testable import Stores
import Testing
import _VecgoTestSupport

@Suite struct TransferChecksumTests {
    static func store(_ server: LocalHTTPServer) throws -> S3Store {
        var c = S3Configuration(bucket: "b", endpoint: server.url, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.retry = RetryTests.quick(4)
        c.multipartThreshold = 5 << 20
        c.multipartPartSize = 5 << 20
        return try S3Store(c)
    }

    @Test func theChecksumIsTheBase64OfTheBigEndianCRC32C() {
        #expect(TransferChecksum.crc32c(Array("123456789".utf8)) == "4waSgw==")  // 0xE3069283, the CRC-32C check value
        #expect(TransferChecksum.crc32c(Array("hello".utf8)) == "mnG7TA==")      // as botocore computes it
        #expect(TransferChecksum.crc32c([]) == "AAAAAA==")
    }

    @Test func putsAndConditionalPutsCarryASignedChecksum() async throws {
        let server = try RetryTests.server([.init(200, "")])
        let store = try Self.store(server)
        try await store.put("segment_1.bin", Array("hello".utf8))
        try await store.putIfAbsent("MANIFEST-1.bin", Array("123456789".utf8))
        let sent = server.requests
        #expect(sent.count == 2)
        #expect(sent.map { $0.headers["x-amz-checksum-crc32c"] } == ["mnG7TA==", "4waSgw=="])
        for r in sent {
            #expect(r.headers["x-amz-sdk-checksum-algorithm"] == "CRC32C")
            let signed = r.headers["authorization"]?.split(separator: ",").first { $0.contains("SignedHeaders=") } ?? ""
            #expect(signed.contains("x-amz-checksum-crc32c"), "\(signed)")
        }
        #expect(sent[1].headers["if-none-match"] == "*")
    }

    @Test func multipartUploadsDeclareTheAlgorithmAndListEachPartsChecksum() async throws {
        let server = try LocalHTTPServer { r in
            if r.path.contains("uploads") { return .init(200, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>") }
            if r.path.contains("partNumber") { return .init(200, "", headers: [("ETag", "\"e\(r.body.count)\"")]) }
            return .init(200, "<CompleteMultipartUploadResult></CompleteMultipartUploadResult>")
        }
        let bytes = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await Self.store(server).put("segment_big.bin", bytes)
        let sent = server.requests
        #expect(sent.first?.headers["x-amz-checksum-algorithm"] == "CRC32C")
        let parts = sent.filter { $0.path.contains("partNumber") }
        #expect(parts.count == 2)
        let expected = [Array(bytes[0..<(5 << 20)]), Array(bytes[(5 << 20)...])].map(TransferChecksum.crc32c)
        #expect(Set(parts.compactMap { $0.headers["x-amz-checksum-crc32c"] }) == Set(expected))
        let complete = String(decoding: try #require(sent.last).body, as: UTF8.self)
        for c in expected { #expect(complete.contains("<ChecksumCRC32C>\(c)</ChecksumCRC32C>"), "\(complete)") }
    }

    @Test func aBodyTheStoreFoundDamagedIsSentAgain() async throws {
        let server = try RetryTests.server([
            RetryTests.s3Error(400, "BadDigest"), .init(200, ""),
        ])
        try await Self.store(server).put("segment_1.bin", [1, 2, 3])
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.body == [1, 2, 3] })

        let always = try RetryTests.server([RetryTests.s3Error(400, "XAmzContentChecksumMismatch")])
        let e = await #expect(throws: StoreError.self) { try await Self.store(always).putIfAbsent("MANIFEST-1.bin", [1]) }
        #expect(e?.code == .network)
        #expect(always.requests.count == 4)
    }

    @Test func aWholeObjectGETWhoseBodyWasDamagedIsFetchedAgain() async throws {
        let good = Array("the segment bytes".utf8)
        var damaged = good
        damaged[4] ^= 0x01
        let sum = TransferChecksum.crc32c(good)
        let server = try RetryTests.server([
            LocalHTTPServer.Response(200, String(decoding: damaged, as: UTF8.self), headers: [("x-amz-checksum-crc32c", sum)]),
            LocalHTTPServer.Response(200, String(decoding: good, as: UTF8.self), headers: [("x-amz-checksum-crc32c", sum)]),
        ])
        #expect(try await Self.store(server).read("segment_1.bin") == good)
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.headers["x-amz-checksum-mode"] == "ENABLED" })

        // Damaged every time: a typed error naming the mismatch, after the read budget.
        let broken = try RetryTests.server([
            LocalHTTPServer.Response(200, String(decoding: damaged, as: UTF8.self), headers: [("x-amz-checksum-crc32c", sum)]),
        ])
        let e = await #expect(throws: StoreError.self) { _ = try await Self.store(broken).read("segment_1.bin") }
        #expect(e?.code == .network)
        #expect(e?.message.contains("CRC32C") == true, "\(String(describing: e))")
        #expect(broken.requests.count == 4)
    }

    @Test func rangesAndCompositeChecksumsAreNotCheckedAgainstTheBody() async throws {
        let body = "abc"
        let server = try RetryTests.server([
            LocalHTTPServer.Response(200, body, headers: [("x-amz-checksum-crc32c", "AAAAAA==-2")]),
            LocalHTTPServer.Response(206, "b", headers: [("x-amz-checksum-crc32c", "AAAAAA==")]),
        ])
        let store = try Self.store(server)
        #expect(try await store.read("multipart.bin") == Array(body.utf8))
        #expect(try await store.read("x", range: 1..<2) == Array("b".utf8))
        #expect(server.requests.count == 2)
        #expect(server.requests[1].headers["x-amz-checksum-mode"] == nil)
    }
}
