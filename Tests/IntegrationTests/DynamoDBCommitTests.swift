import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SegmentFormat
@testable import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// `DynamoDBCommitStore` against moto's DynamoDB (the same moto server as S3) through our own
/// client: the table, the conditional `PutItem` commit point, staged and finalised manifests,
/// readers completing unfinished commits, and several writers committing at once.
@Suite struct DynamoDBCommitTests {
    static let table = "vecgo-commits"

    /// A commit store for a new database (its own bucket) in the shared table.
    static func store(_ tag: String, bucket: String? = nil) async throws -> DynamoDBCommitStore {
        let endpoint = try TestEnvironment.s3Endpoint()
        let creds = S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")
        let b = bucket ?? TestEnvironment.uniqueBucket(tag)
        let objects = try S3Store(S3Configuration(bucket: b, prefix: "db/", endpoint: endpoint, credentials: creds))
        if bucket == nil { try await objects.createBucketIfNeeded() }
        var config = DynamoDBConfiguration(table: table, endpoint: endpoint, credentials: creds)
        config.maxAttempts = 4
        let s = try DynamoDBCommitStore(objects: objects, baseURI: "s3://\(b)/db/", configuration: config)
        try await s.createTableIfNeeded()
        return s
    }

    static func manifest(_ v: UInt64) -> String { Manifest.objectName(version: v) }

    @Test func theConditionalPutItemDecidesEachVersionOnce() async throws {
        let s = try await Self.store("commit")
        try await s.createTableIfNeeded()  // again: the table exists, fine
        #expect(try await s.latestVersion() == nil)
        try await s.putIfAbsent(Self.manifest(1), [1])
        let taken = await #expect(throws: StoreError.self) { try await s.putIfAbsent(Self.manifest(1), [2]) }
        #expect(taken?.code == .alreadyExists)
        #expect(taken?.serviceCode == "ConditionalCheckFailedException")
        let wins = await withTaskGroup(of: UInt8?.self) { g in
            for i in 0..<8 { g.addTask { (try? await s.putIfAbsent(Self.manifest(2), [UInt8(10 + i)])) != nil ? UInt8(10 + i) : nil } }
            return await g.reduce(into: [UInt8]()) { if let w = $1 { $0.append(w) } }
        }
        #expect(wins.count == 1)
        #expect(try await s.latestVersion() == 2)
        #expect(try await s.read(Self.manifest(1)) == [1])
        #expect(try await s.read(Self.manifest(2)) == wins)
        #expect(try await s.committedVersions() == [1, 2])
        // Finalised: the manifests are plain objects, the staged copies are gone.
        #expect(try await s.objects.list(prefix: "").map(\.name) == [Self.manifest(1), Self.manifest(2)])
        // Other names pass straight through.
        try await s.putIfAbsent("segment_a.bin", [5])
        await #expect(throws: StoreError.self) { try await s.putIfAbsent("segment_a.bin", [6]) }
    }

    @Test func readersCompleteACommitWhoseWriterStoppedAtTheCommitPoint() async throws {
        let writer = try await Self.store("unfinished")
        try await writer.putIfAbsent(Self.manifest(1), [1])
        // The writer passes the commit point of version 2 and stops before writing the manifest.
        try await writer.commit(Self.manifest(2), version: 2, [2, 2], finalise: false)
        await #expect(throws: StoreError.self) { _ = try await writer.objects.size(Self.manifest(2)) }
        #expect(try await writer.objects.list(prefix: "staged_").count == 1)
        // Another process (a new store on the same bucket) sees version 2 and completes it.
        let reader = try await Self.store("unfinished", bucket: (writer.objects as! S3Store).configuration.bucket)
        #expect(try await reader.latestVersion() == 2)
        #expect(try await reader.objects.read(Self.manifest(2)) == [2, 2])
        #expect(try await reader.objects.list(prefix: "staged_").isEmpty)
        // The same through a read by name, and through a listing.
        try await writer.commit(Self.manifest(3), version: 3, [3], finalise: false)
        #expect(try await reader.read(Self.manifest(3)) == [3])
        try await writer.commit(Self.manifest(4), version: 4, [4], finalise: false)
        #expect(try await reader.list(prefix: "MANIFEST-").map(\.name).last == Self.manifest(4))
        // Version 4 is taken even though its writer never finished it.
        await #expect(throws: StoreError.self) { try await reader.putIfAbsent(Self.manifest(4), [9]) }
        // A writer whose own finalising failed finishes that version before committing the next.
        try await writer.commit(Self.manifest(5), version: 5, [5], finalise: false)
        try await writer.putIfAbsent(Self.manifest(6), [6])
        #expect(try await writer.objects.read(Self.manifest(5)) == [5])
        #expect(try await writer.objects.list(prefix: "staged_").isEmpty)
    }

    @Test func aReaderThatMayNotWriteStillReadsAnUnfinishedCommit() async throws {
        let writer = try await Self.store("readonlyrole")
        try await writer.putIfAbsent(Self.manifest(1), [1])
        try await writer.commit(Self.manifest(2), version: 2, [2, 2], finalise: false)
        // Every write refused, as for a read-only IAM role.
        let readOnly = InterceptingStore(writer.objects, onWrite: { name, _ in
            throw StoreError(.accessDenied, "read-only role", object: name, httpStatus: 403)
        })
        let reader = try DynamoDBCommitStore(objects: readOnly, baseURI: writer.baseURI,
                                             configuration: DynamoDBConfiguration(table: Self.table, endpoint: try TestEnvironment.s3Endpoint(),
                                                                                  credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")))
        #expect(try await reader.latestVersion() == 2)
        #expect(try await reader.read(Self.manifest(2)) == [2, 2])
        #expect(try await reader.read(Self.manifest(2), range: 1..<2) == [2])
        #expect(try await reader.size(Self.manifest(2)) == 2)
        await #expect(throws: StoreError.self) { _ = try await writer.objects.size(Self.manifest(2)) }  // still unfinished
    }

    @Test func aDatabaseWrittenWithoutTheTableIsRefusedNotForked() async throws {
        let s = try await Self.store("foreign")
        try await s.objects.putIfAbsent(Self.manifest(1), [1, 1])  // committed by create-if-absent, no table
        let e = await #expect(throws: StoreError.self) { _ = try await s.latestVersion() }
        #expect(e?.code == .invalidArgument)
        #expect(e?.message.contains("without the table") == true)
        // Forcing a commit of version 1 through the table cannot replace the manifest.
        let c = await #expect(throws: StoreError.self) { try await s.putIfAbsent(Self.manifest(1), [9]) }
        #expect(c?.code == .conflict)
        #expect(try await s.objects.read(Self.manifest(1)) == [1, 1])
    }

    @Test func vacuumRemovesStagedLeftoversAndKeepsEveryRetainedVersion() async throws {
        let s = try await Self.store("vacuum")
        let db = try await Vecgo.open(.remote(s), .create(dimension: 2, metric: .l2), .maxCommitObjectAge(0.1))
        for v in 0..<3 {
            try await db.upsert(id: UInt64(v), [Float(v), 0])
            try await db.commit()
        }
        let lost = "staged_\(Self.manifest(2).dropLast(4))-lost.bin"  // lost the race for version 2
        let inFlight = "staged_\(Self.manifest(4).dropLast(4))-next.bin"  // may still reach its commit point
        try await s.objects.put(lost, [0])
        try await s.objects.put(inFlight, [0])
        try await Task.sleep(nanoseconds: 300_000_000)
        let report = try await db.vacuum(retainVersions: 2, gracePeriod: 0.2)
        #expect(report.objectsDeleted >= 1)
        #expect(try await s.objects.list(prefix: "staged_").map(\.name) == [inFlight])
        let reader = try await Vecgo.open(.remote(s), .readOnly)
        #expect(try await reader.search([0, 0], k: 10).count == 3)
        #expect(try await Vecgo.verify(s).ok)
        try await db.close()
    }

    /// The CommitStore contract: the table is the record of versions (`.empty`, then
    /// `.version`), a lost race is `.alreadyExists`, and a committed manifest reads back even
    /// while its writer has not finalised it.
    @Test func itIsACommitStoreWhoseTableIsTheRecord() async throws {
        let s = try await Self.store("protocol")
        let c: any CommitStore = s
        #expect(try await c.latest() == .empty)
        try await c.commit(version: 1, manifest: Self.manifest(1), [1])
        let lost = await #expect(throws: StoreError.self) { try await c.commit(version: 1, manifest: Self.manifest(1), [2]) }
        #expect(lost?.code == .alreadyExists)
        #expect(try await c.latest() == .version(1))
        #expect(try await c.committedManifest(version: 1, name: Self.manifest(1)) == [1])
        #expect(try await c.committedManifest(version: 2, name: Self.manifest(2)) == nil)
        try await s.commit(Self.manifest(2), version: 2, [2, 2], finalise: false)
        #expect(try await c.committedManifest(version: 2, name: Self.manifest(2)) == [2, 2])
        #expect(try await s.commitStore.latest() == .version(2))  // as the backend's store it is its own commit store
    }

    /// The engine given the objects as its backend and the table as `.commitStore`: versions
    /// go through the table; a reader that may not write (so cannot finalise) still opens a
    /// version whose writer stopped at the commit point, from the staged bytes.
    @Test func theEngineCommitsThroughATablePassedAtOpen() async throws {
        let s = try await Self.store("option")
        let db = try await Vecgo.open(.remote(s.objects), .commitStore(s), .create(dimension: 2, metric: .l2))
        try await db.upsert(id: 1, [1, 0])
        let v = try await db.commit()
        try await db.close()
        #expect(try await s.committedVersions() == Array(1...v))
        #expect(try await s.objects.list(prefix: Manifest.objectNamePrefix).map(\.name) == (1...v).map(Self.manifest))
        // Version v+1 passes its commit point and its writer stops: only a staged copy exists.
        var next = try Manifest.decode(try await s.objects.read(Self.manifest(v)), object: Self.manifest(v))
        next.version = v + 1
        next.parentVersion = v
        try await s.commit(Self.manifest(v + 1), version: v + 1, try next.encode(), finalise: false)
        let readOnly = InterceptingStore(s.objects, onWrite: { name, _ in
            throw StoreError(.accessDenied, "read-only role", object: name, httpStatus: 403)
        })
        let table = try DynamoDBCommitStore(objects: readOnly, baseURI: s.baseURI,
                                            configuration: DynamoDBConfiguration(table: Self.table, endpoint: try TestEnvironment.s3Endpoint(),
                                                                                 credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")))
        let reader = try await Vecgo.open(.remote(readOnly), .commitStore(table), .readOnly)
        #expect(await reader.version == v + 1)
        #expect(try await reader.search([1, 0], k: 1).map(\.id) == [1])
        try await reader.close()
        await #expect(throws: StoreError.self) { _ = try await s.objects.size(Self.manifest(v + 1)) }  // still unfinished
    }

    /// Forwards one request to moto and returns its answer (synchronously, for LocalHTTPServer).
    static func forward(_ r: LocalHTTPServer.Request, to endpoint: String) -> LocalHTTPServer.Response {
        var request = URLRequest(url: URL(string: endpoint + r.path)!)
        request.httpMethod = r.method
        request.httpBody = Data(r.body)
        for (name, value) in r.headers where name != "host" && name != "content-length" { request.setValue(value, forHTTPHeaderField: name) }
        let done = DispatchSemaphore(value: 0)
        let answer = Locked(LocalHTTPServer.Response(502, "forwarding failed"))
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let http = response as? HTTPURLResponse {
                answer.withLock { $0 = LocalHTTPServer.Response(http.statusCode, String(decoding: data ?? Data(), as: UTF8.self)) }
            }
            done.signal()
        }.resume()
        done.wait()
        return answer.withLock { $0 }
    }

    /// The first PutItem reaches DynamoDB and commits, but its answer is lost (the connection
    /// drops): the retry fails its condition, and the store must recognise its own commit.
    @Test func aPutItemThatLandedButWhoseAnswerWasLostIsStillACommit() async throws {
        let moto = try TestEnvironment.s3Endpoint()
        let dropped = Locked(false)
        let lossy = try LocalHTTPServer { r in
            let answer = Self.forward(r, to: moto)
            let drop = r.headers["x-amz-target"] == "DynamoDB_20120810.PutItem" && dropped.withLock { d in
                defer { d = true }
                return !d
            }
            return drop ? .dropConnection : answer
        }
        let bucket = TestEnvironment.uniqueBucket("lostanswer")
        let creds = S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")
        let objects = try S3Store(S3Configuration(bucket: bucket, endpoint: moto, credentials: creds))
        try await objects.createBucketIfNeeded()
        var config = DynamoDBConfiguration(table: Self.table, endpoint: lossy.url, credentials: creds)
        config.maxAttempts = 3
        let s = try DynamoDBCommitStore(objects: objects, baseURI: "s3://\(bucket)/", configuration: config)
        try await s.createTableIfNeeded()
        try await s.putIfAbsent(Self.manifest(1), [4, 2])
        #expect(dropped.withLock { $0 }, "the PutItem answer was never dropped")
        #expect(lossy.requests.filter { $0.headers["x-amz-target"] == "DynamoDB_20120810.PutItem" }.count == 2)
        #expect(try await s.latestVersion() == 1)
        #expect(try await objects.read(Self.manifest(1)) == [4, 2])
        #expect(try await objects.list(prefix: "staged_").isEmpty)
    }

    @Test func severalWritersCommitEveryVersionExactlyOnce() async throws {
        let first = try await Self.store("writers")
        let bucket = (first.objects as! S3Store).configuration.bucket
        let writers = 4, commits = 4, rows = 10
        let acked = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for w in 0..<writers {
                group.addTask {
                    let s = try await Self.store("writers", bucket: bucket)
                    let h = try await Vecgo.open(.remote(s), .create(dimension: 4, metric: .l2), .commitAttempts(40))
                    var versions: [UInt64] = []
                    for c in 0..<commits {
                        for r in 0..<rows {
                            let id = UInt64(w * 1000 + c * 100 + r)
                            try await h.upsert(id: id, [Float(id), 0, 0, 0])
                        }
                        versions.append(try await h.commit())
                    }
                    try await h.close()
                    return versions
                }
            }
            return try await group.reduce(into: [UInt64]()) { $0 += $1 }
        }
        #expect(acked.count == writers * commits)
        #expect(Set(acked).count == acked.count, "two commits were acknowledged with the same version")
        let versions = try await first.committedVersions()
        #expect(versions == Array(1...UInt64(versions.count)), "versions are not 1...n exactly once: \(versions)")
        #expect(Set(acked).isSubset(of: Set(versions)))
        let names = try await first.objects.list(prefix: "").map(\.name)
        #expect(names.filter { $0.hasPrefix("MANIFEST-") } == versions.map(Self.manifest))
        #expect(!names.contains { $0.hasPrefix("staged_") })
        let reader = try await Vecgo.open(.remote(first), .readOnly)
        let all = try await reader.search([0, 0, 0, 0], k: 1000)
        #expect(all.count == writers * commits * rows)
        #expect(try await Vecgo.verify(first).ok)
    }

    @Test func signaturesPassTheVerifierAndAWrongSecretIsDenied() async throws {
        let auth = try TestEnvironment.s3AuthEndpoint()
        let bucket = TestEnvironment.uniqueBucket("ddbsigned")
        func store(_ secret: String) throws -> DynamoDBCommitStore {
            let creds = S3Credentials(accessKeyID: auth.key, secretAccessKey: secret)
            var objects = S3Configuration(bucket: bucket, endpoint: auth.endpoint, credentials: creds)
            objects.maxAttempts = 2
            var config = DynamoDBConfiguration(table: "vecgo-signed-commits", endpoint: auth.endpoint, credentials: creds)
            config.maxAttempts = 2
            return try DynamoDBCommitStore(objects: try S3Store(objects), baseURI: "s3://\(bucket)/", configuration: config)
        }
        let s = try store(auth.secret)
        try await (s.objects as! S3Store).createBucketIfNeeded()
        try await s.createTableIfNeeded()
        try await s.putIfAbsent(Self.manifest(1), [1])
        await #expect(throws: StoreError.self) { try await s.putIfAbsent(Self.manifest(1), [1]) }
        #expect(try await s.latestVersion() == 1)
        #expect(try await s.committedVersions() == [1])
        let wrong = "not-the-secret-\(UInt32.random(in: 0...UInt32.max))"
        let denied = await #expect(throws: StoreError.self) { _ = try await store(wrong).latestVersion() }
        #expect(denied?.code == .accessDenied, "\(String(describing: denied))")
        for text in ["\(String(describing: denied))", String(reflecting: denied as Any), "\(try store(wrong))"] {
            #expect(!text.contains(wrong) && !text.contains(auth.secret), "a secret leaked: \(text)")
        }
    }
}
