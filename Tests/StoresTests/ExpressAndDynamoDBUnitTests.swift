import SegmentFormat
@testable import Stores
import Testing

/// Rules that need no server: directory-bucket names, zonal endpoints, manifest names, and
/// DynamoDB's retryable errors.
@Suite struct ExpressAndDynamoDBUnitTests {
    @Test func directoryBucketNamesAreValidated() throws {
        #expect(try S3ExpressStore.availabilityZoneID(ofBucket: "vectors--usw2-az1--x-s3") == "usw2-az1")
        #expect(try S3ExpressStore.availabilityZoneID(ofBucket: "a-b-1--use1-az4--x-s3") == "use1-az4")
        #expect(try S3ExpressStore.availabilityZoneID(ofBucket: "logs--usw2-lax1-az1--x-s3") == "usw2-lax1-az1")
        #expect(try S3ExpressStore.zonalEndpoint(bucket: "vectors--usw2-az1--x-s3", region: "us-west-2")
                == "https://s3express-usw2-az1.us-west-2.amazonaws.com")
        for bad in ["vectors", "vectors--x-s3", "Vectors--usw2-az1--x-s3", "-v--usw2-az1--x-s3", "v--usw2--x-s3",
                    "v--usw2-azx--x-s3", "v--usw2-az1--x-s4", String(repeating: "v", count: 60) + "--usw2-az1--x-s3"] {
            let e = #expect(throws: StoreError.self, "\(bad)") { _ = try S3ExpressStore.availabilityZoneID(ofBucket: bad) }
            #expect(e?.code == .invalidArgument)
            #expect(e?.message.contains("<base>--<az-id>--x-s3") == true)
        }
        var config = S3Configuration(bucket: "plain-bucket")
        config.region = "us-west-2"
        #expect(throws: StoreError.self) { _ = try S3ExpressStore(config) }
    }

    @Test func aStoreOnAWSUsesTheZonalEndpoint() throws {
        let s = try S3ExpressStore(S3Configuration(bucket: "vectors--usw2-az1--x-s3", prefix: "db", region: "us-west-2"))
        #expect(s.availabilityZoneID == "usw2-az1")
        #expect(s.configuration.prefix == "db/")
        #expect(s.description.contains("usw2-az1"))
        #expect(s.sessionsCreated == 0)  // no request until the first operation
    }

    /// The DynamoDB commit store recognises manifests by SegmentFormat's one naming rule, and
    /// only names that rule makes exactly (no directories, no staged copies).
    @Test func dynamoDBRecognisesManifestsBySegmentFormatsRule() {
        #expect(Manifest.objectName(version: 7) == "MANIFEST-00000000000000000007.bin")
        for v: UInt64 in [1, 9, 10, 42, 123_456_789, .max] {
            #expect(DynamoDBCommitStore.manifestVersion(Manifest.objectName(version: v)) == v)
        }
        for bad in ["MANIFEST-42.bin", "MANIFEST-0000000000000000004x.bin", "staged_MANIFEST-00000000000000000001-ab.bin",
                    "segment_1.bin", "x/MANIFEST-00000000000000000001.bin"] {
            #expect(DynamoDBCommitStore.manifestVersion(bad) == nil, "\(bad)")
        }
    }

    @Test func dynamoDBThrottlingIsRetriedAndConditionsAreNot() {
        for code in ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"] {
            #expect(AttemptOutcome.classify(status: 400, code: code) == .retry(timeout: false), "\(code)")
        }
        #expect(AttemptOutcome.classify(status: 400, code: "ConditionalCheckFailedException") == .fail)
        #expect(AttemptOutcome.classify(status: 400, code: "ValidationException") == .fail)
        #expect(AttemptOutcome.classify(status: 500, code: "InternalServerError") == .retry(timeout: false))
    }

    @Test func tableNamesAreValidated() {
        for bad in ["ab", "has space", "semi;colon"] {
            #expect(throws: StoreError.self, "\(bad)") {
                _ = try DynamoDBCommitStore(objects: MemoryBlobStore(), baseURI: "x", configuration: DynamoDBConfiguration(table: bad))
            }
        }
        #expect(throws: StoreError.self) {
            _ = try DynamoDBCommitStore(objects: MemoryBlobStore(), baseURI: "", configuration: DynamoDBConfiguration(table: "good"))
        }
    }
}
