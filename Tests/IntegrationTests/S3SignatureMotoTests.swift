import Foundation
import Stores
import Testing
import _VecgoTestSupport

/// Our SigV4 signatures checked by a real verifier: a moto server with
/// `INITIAL_NO_AUTH_ACTION_COUNT=0` and an IAM user (scripts/moto_auth_setup.py).
///
/// moto 5.2's verifier also rejects boto3's own signatures for object keys with `+`, `=` or
/// non-ASCII characters and for query values holding `/` (a LIST prefix like `p/`): its
/// canonical request differs from AWS's there. Those cases are exercised against the
/// non-verifying server (`S3StoreMotoTests.awkwardKeysSurviveTheRoundTrip`, the listing tests)
/// and by the AWS documentation vectors (`SigV4Tests`); here the store has no prefix and the
/// keys are ones both a correct verifier and moto accept.
@Suite struct S3SignatureMotoTests {
    static func store(secret: String? = nil, provider: (any CredentialsProvider)? = nil,
                      bucket: String) throws -> S3Store {
        let auth = try TestEnvironment.s3AuthEndpoint()
        var config = S3Configuration(bucket: bucket, prefix: "", endpoint: auth.endpoint,
                                     credentials: S3Credentials(accessKeyID: auth.key, secretAccessKey: secret ?? auth.secret))
        config.credentialsProvider = provider
        config.maxAttempts = 2
        return try S3Store(config)
    }

    @Test func everyOperationPassesTheVerifier() async throws {
        let s = try Self.store(bucket: TestEnvironment.uniqueBucket("signed"))
        try await s.createBucketIfNeeded()
        for name in ["plain.bin", "with space.bin", "dir/sub dir/x~y_z-.bin", "MANIFEST-00000000000000000001.bin"] {
            let bytes = Array("payload of \(name)".utf8)
            try await s.put(name, bytes)
            #expect(try await s.read(name) == bytes, "\(name)")
            #expect(try await s.read(name, range: 2..<6) == Array(bytes[2..<6]))
            #expect(try await s.size(name) == UInt64(bytes.count))
            #expect(try await s.list(prefix: "").contains { $0.name == name }, "\(name)")
        }
        try await s.putIfAbsent("commit.bin", [1])
        let taken = await #expect(throws: StoreError.self) { try await s.putIfAbsent("commit.bin", [2]) }
        #expect(taken?.code == .alreadyExists)
        for o in try await s.list(prefix: "") { try await s.delete(o.name) }
        #expect(try await s.list(prefix: "").isEmpty)
    }

    @Test func credentialsFromTheChainAreAccepted() async throws {
        let auth = try TestEnvironment.s3AuthEndpoint()
        let env = AWSEnvironment(variables: ["AWS_ACCESS_KEY_ID": auth.key, "AWS_SECRET_ACCESS_KEY": auth.secret,
                                             "AWS_EC2_METADATA_DISABLED": "true"])
        let s = try Self.store(provider: CredentialChain.default(env), bucket: TestEnvironment.uniqueBucket("chain"))
        try await s.createBucketIfNeeded()
        try await s.put("x.bin", [9, 9])
        #expect(try await s.read("x.bin") == [9, 9])
    }

    @Test func aWrongSecretIsAccessDeniedAndNeverShown() async throws {
        let bucket = TestEnvironment.uniqueBucket("wrong")
        try await Self.store(bucket: bucket).createBucketIfNeeded()
        let wrongSecret = "Wrong/Secret+Value=42"
        let s = try Self.store(secret: wrongSecret, bucket: bucket)
        for attempt in [{ try await s.put("x.bin", [1]) }, { _ = try await s.read("x.bin") },
                        { _ = try await s.list(prefix: "") }] as [@Sendable () async throws -> Void] {
            let error = await #expect(throws: StoreError.self) { try await attempt() }
            #expect(error?.code == .accessDenied, "\(String(describing: error))")
            #expect(error?.serviceCode != nil)
            let text = "\(String(describing: error)) \(String(reflecting: error)) \(s) \(s.configuration.credentials)"
            #expect(!text.contains(wrongSecret))
        }
    }
}
