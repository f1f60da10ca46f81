@testable import Stores
import Testing

/// The signature examples of the AWS S3 SigV4 documentation ("Signature Calculations for the
/// Authorization Header: Transferring Payload in a Single Chunk").
@Suite struct SigV4Tests {
    static let signer = SigV4(credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                                         secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                              region: "us-east-1", service: "s3")
    static let date = "20130524T000000Z"

    func signature(_ auth: String) -> String { String(auth.split(separator: "=").last!) }

    @Test func getObjectExample() {
        let auth = Self.signer.authorization(
            method: "GET", path: "/test.txt", query: [],
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                      ("x-amz-content-sha256", Crypto.emptyPayloadHash), ("x-amz-date", Self.date)],
            payloadHash: Crypto.emptyPayloadHash, amzDate: Self.date)
        #expect(signature(auth) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"))
        #expect(auth.contains("Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"))
    }

    @Test func putObjectExample() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let hash = Crypto.hex(Crypto.sha256(body))
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let auth = Self.signer.authorization(
            method: "PUT", path: "/" + SigV4.encode("test$file.text", keepSlash: true), query: [],
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                      ("x-amz-date", Self.date), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                      ("x-amz-content-sha256", hash)],
            payloadHash: hash, amzDate: Self.date)
        #expect(signature(auth) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func listObjectsExample() {
        let auth = Self.signer.authorization(
            method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")],
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", Crypto.emptyPayloadHash),
                      ("x-amz-date", Self.date)],
            payloadHash: Crypto.emptyPayloadHash, amzDate: Self.date)
        #expect(signature(auth) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// The general SigV4 example of the AWS documentation (IAM ListUsers, "Create a signed
    /// AWS API request"): another service, a query string, a header with inner spaces.
    @Test func generalDocumentationExample() {
        let signer = SigV4(credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE",
                                                      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                           region: "us-east-1", service: "iam")
        let auth = signer.authorization(
            method: "GET", path: "/", query: [("Version", "2010-05-08"), ("Action", "ListUsers")],
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "iam.amazonaws.com"),
                      ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: Crypto.emptyPayloadHash, amzDate: "20150830T123600Z")
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    }

    @Test func awkwardKeysAreEncodedOnce() {
        #expect(SigV4.encode("a b+c=d/é~.-_", keepSlash: true) == "a%20b%2Bc%3Dd/%C3%A9~.-_")
        #expect(SigV4.encode("a/b", keepSlash: false) == "a%2Fb")
        #expect(SigV4.canonicalQuery([("prefix", "x y"), ("list-type", "2")]) == "list-type=2&prefix=x%20y")
    }

    @Test func amzDateIsUTCCalendarTime() {
        #expect(SigV4.amzDate(epochSeconds: 1_369_353_600) == "20130524T000000Z")
        #expect(SigV4.amzDate(epochSeconds: 951_782_400 + 3661) == "20000229T010101Z")  // a leap day
    }

    @Test func credentialsNeverShowTheirSecrets() {
        let c = S3Credentials(accessKeyID: "AKID", secretAccessKey: "SECRET-123", sessionToken: "TOKEN-456")
        for text in [c.description, c.debugDescription, "\(c)", String(reflecting: c)] {
            #expect(!text.contains("SECRET-123") && !text.contains("TOKEN-456"), "\(text)")
        }
    }

    @Test func xmlScannerDecodesEntities() {
        let xml = XMLScanner(Array("<R><Contents><Key>a&amp;b &lt;c&gt; &#233;&#x41;</Key><Size>5</Size></Contents><IsTruncated>false</IsTruncated></R>".utf8))
        #expect(xml.all("Key") == ["a&b <c> éA"])
        #expect(xml.first("IsTruncated") == "false")
    }

    @Test func retryClassificationFollowsTheStandardMode() {
        #expect(AttemptOutcome.classify(status: 200, code: nil) == .success)
        #expect(AttemptOutcome.classify(status: 503, code: "SlowDown") == .retry(timeout: false))
        #expect(AttemptOutcome.classify(status: 500, code: nil) == .retry(timeout: false))
        #expect(AttemptOutcome.classify(status: 409, code: "ConditionalRequestConflict") == .retry(timeout: false))
        #expect(AttemptOutcome.classify(status: 412, code: "PreconditionFailed") == .fail)
        #expect(AttemptOutcome.classify(status: 403, code: "AccessDenied") == .fail)
        #expect(AttemptOutcome.classify(status: 404, code: "NoSuchKey") == .fail)
        var rng = SystemRandomNumberGenerator()
        let p = RetryPolicy(maxAttempts: 3)
        for attempt in 1...30 { #expect(p.delayMillis(afterAttempt: attempt, using: &rng) <= 20_000) }
        var quota = RetryQuota()
        var granted = 0
        while quota.acquire(timeout: false) > 0 { granted += 1 }
        #expect(granted == 100)
    }
}
