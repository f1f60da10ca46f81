// The HTTP API of `vecgo serve`, driven through HummingbirdTesting: search, writes and
// commits, read-only refusals, malformed requests, metrics, readiness and shutdown.
import Foundation
import Hummingbird
import HummingbirdTesting
import Stores
import Testing
import Vecgo
@testable import VecgoServer
import Logging
import _VecgoTestSupport

/// A response's status and JSON body.
struct Reply: @unchecked Sendable {
    var status: HTTPResponse.Status
    var text: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil) async throws -> Reply {
        try await execute(uri: uri, method: method, headers: [.contentType: "application/json"],
                          body: body.map { ByteBuffer(string: $0) }) { r in
            Reply(status: r.status, text: String(buffer: r.body))
        }
    }

    /// Polls `/readyz` until it answers 200.
    func waitUntilReady() async throws {
        for _ in 0..<2_000 {
            if try await call(.get, "/readyz").status == .ok { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("the server never became ready")
    }
}

@Suite struct VecgoServerTests {
    static func config(_ store: any BlobStore, readOnly: Bool = false, create: Bool = true,
                       limits: VecgoServer.Configuration.Limits = .init()) -> VecgoServer.Configuration {
        VecgoServer.Configuration(store: store, readOnly: readOnly, create: create && !readOnly ? (dimension: 3, metric: .l2) : nil,
                                  port: 0, refreshInterval: 0.05, limits: limits)
    }

    static func withServer(_ config: VecgoServer.Configuration,
                           _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = try VecgoServer(config).makeApplication()
        try await app.test(.router) { client in
            try await client.waitUntilReady()
            try await body(client)
        }
    }

    /// A store holding one committed version of three rows.
    static func populated() async throws -> MemoryBlobStore {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 3, metric: .l2))
        try await w.upsert(key: "a", [1, 0, 0], metadata: ["color": .string("red"), "n": .int(1)])
        try await w.upsert(key: "b", [0, 1, 0], metadata: ["color": .string("blue"), "n": .int(2)])
        try await w.upsert(key: "c", [0, 0, 1], metadata: ["color": .string("red"), "n": .int(3)])
        try await w.close()
        return store
    }

    @Test func searchFindsTheNearestAndAppliesTheFilter() async throws {
        let store = try await Self.populated()
        try await Self.withServer(Self.config(store, readOnly: true)) { client in
            let all = try await client.call(.post, "/v1/search", #"{"vector": [0.9, 0.1, 0], "k": 2, "include": ["metadata"]}"#)
            #expect(all.status == .ok, "\(all.text)")
            let hits = all.json["results"] as? [[String: Any]] ?? []
            #expect(hits.count == 2)
            #expect(hits.first?["key"] as? String == "a")
            #expect((hits.first?["metadata"] as? [String: Any])?["color"] as? String == "red")
            #expect(all.json["version"] as? Int == 1)
            let filtered = try await client.call(.post, "/v1/search", """
                {"vector": [0.9, 0.1, 0], "k": 5, "include": ["metadata"],
                 "filter": {"and": [{"eq": {"field": "color", "value": "red"}}, {"range": {"field": "n", "gt": 1}}]}}
                """)
            let keys = (filtered.json["results"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(keys == ["c"], "\(filtered.text)")
            let info = try await client.call(.get, "/v1/info")
            #expect(info.json["dimension"] as? Int == 3)
            #expect(info.json["metric"] as? String == "l2")
            #expect(info.json["rows"] as? Int == 3)
            #expect(info.json["segments"] as? Int == 1)
            #expect(info.json["readOnly"] as? Bool == true)
        }
    }

    @Test func aWriterUpsertsCommitsAndDeletes() async throws {
        let store = MemoryBlobStore()
        try await Self.withServer(Self.config(store)) { client in
            let up = try await client.call(.post, "/v1/upsert", """
                {"rows": [{"key": "x", "vector": [1, 2, 3], "metadata": {"tags": ["p", "q"], "at": {"timestamp": 7}}, "payload": "AQI="},
                          {"id": 42, "vector": [3, 2, 1]}, {"vector": [0, 0, 1]}]}
                """)
            #expect(up.status == .ok, "\(up.text)")
            #expect((up.json["ids"] as? [Any])?.count == 3)
            #expect(up.json["pending"] as? Int == 3)
            // Pending rows are searched at once.
            let s = try await client.call(.post, "/v1/search", #"{"vector": [1, 2, 3], "k": 1, "include": ["metadata", "payload", "vector"]}"#)
            let hit = (s.json["results"] as? [[String: Any]])?.first
            #expect(hit?["key"] as? String == "x", "\(s.text)")
            #expect(hit?["payload"] as? String == "AQI=")
            #expect((hit?["metadata"] as? [String: Any])?["tags"] as? [String] == ["p", "q"])
            #expect(((hit?["metadata"] as? [String: Any])?["at"] as? [String: Any])?["timestamp"] as? Int == 7)
            let c = try await client.call(.post, "/v1/commit")
            #expect(c.status == .ok, "\(c.text)")
            let committed = c.json["version"] as? Int ?? 0
            #expect(committed >= 1)
            #expect(try await client.call(.get, "/v1/info").json["rows"] as? Int == 3)
            let d = try await client.call(.post, "/v1/delete", #"{"ids": [42], "keys": ["x"], "commit": true}"#)
            #expect(d.status == .ok, "\(d.text)")
            #expect((d.json["version"] as? Int ?? 0) > committed)
            let after = try await client.call(.post, "/v1/search", #"{"vector": [1, 2, 3], "k": 10}"#)
            #expect((after.json["results"] as? [Any])?.count == 1, "\(after.text)")
        }
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(await reader.versionInfo.rows >= 1)
        #expect(try await reader.search([0, 0, 1], k: 10).count == 1)
    }

    @Test func aReadOnlyServerAnswers403WithTheReadOnlyCode() async throws {
        let store = try await Self.populated()
        try await Self.withServer(Self.config(store, readOnly: true)) { client in
            for (uri, body) in [("/v1/upsert", #"{"rows": [{"vector": [1, 2, 3]}]}"#), ("/v1/delete", #"{"ids": [1]}"#),
                                ("/v1/commit", "{}")] {
                let r = try await client.call(.post, uri, body)
                #expect(r.status == .forbidden, "\(uri): \(r.text)")
                #expect(r.errorCode == "readOnly", "\(uri): \(r.text)")
            }
        }
    }

    @Test func eachMalformedRequestGetsA4xxJSONErrorAndTheServerKeepsServing() async throws {
        let store = try await Self.populated()
        let limits = VecgoServer.Configuration.Limits(maxBodyBytes: 4096, maxK: 100)
        try await Self.withServer(Self.config(store, readOnly: true, limits: limits)) { client in
            let cases: [(String, String, HTTPResponse.Status, String)] = [
                ("bad JSON", #"{"vector": [1, 2"#, .badRequest, "invalidArgument"),
                ("no body", "", .badRequest, "invalidArgument"),
                ("missing vector", #"{"k": 3}"#, .badRequest, "invalidArgument"),
                ("vector of strings", #"{"vector": ["a", "b", "c"]}"#, .badRequest, "invalidArgument"),
                ("wrong dimension", #"{"vector": [1, 2]}"#, .badRequest, "dimensionMismatch"),
                ("NaN", #"{"vector": [NaN, 0, 0]}"#, .badRequest, "invalidArgument"),
                ("overflowing number", #"{"vector": [1e999, 0, 0]}"#, .badRequest, "invalidArgument"),
                ("k zero", #"{"vector": [1, 0, 0], "k": 0}"#, .badRequest, "invalidArgument"),
                ("k over the limit", #"{"vector": [1, 0, 0], "k": 101}"#, .badRequest, "invalidArgument"),
                ("unknown include", #"{"vector": [1, 0, 0], "include": ["everything"]}"#, .badRequest, "invalidArgument"),
                ("unknown filter", #"{"vector": [1, 0, 0], "filter": {"like": {"field": "a"}}}"#, .badRequest, "invalidArgument"),
                ("body too large", #"{"vector": [1, 0, 0], "pad": ""# + String(repeating: "x", count: 8192) + #""}"#,
                 .contentTooLarge, "payloadTooLarge"),
            ]
            for (what, body, status, code) in cases {
                let r = try await client.call(.post, "/v1/search", body)
                #expect(r.status == status, "\(what): \(r.status) \(r.text)")
                #expect(r.errorCode == code, "\(what): \(r.text)")
                #expect(r.errorMessage?.isEmpty == false, "\(what): \(r.text)")
                #expect(!r.text.contains("Swift."), "\(what): \(r.text)")
                let ok = try await client.call(.post, "/v1/search", #"{"vector": [1, 0, 0], "k": 1}"#)
                #expect(ok.status == .ok, "after \(what): \(ok.text)")
            }
            let unknown = try await client.call(.get, "/v1/nothing")
            #expect(unknown.status == .notFound)
            #expect(unknown.errorCode == "notFound", "\(unknown.text)")
        }
    }

    @Test func metricsCarryTheNamedSeriesAfterAQuery() async throws {
        let store = try await Self.populated()
        // The server bootstraps the metrics backend when it is made: handles made after count.
        let app = try VecgoServer(Self.config(store, readOnly: true)).makeApplication()
        // A conflict between two writers of this process, for the conflicts series.
        let a = try await Vecgo.open(.remote(store)), b = try await Vecgo.open(.remote(store))
        try await a.upsert(key: "a", [5, 5, 5])
        try await b.upsert(key: "a", [6, 6, 6])
        try await a.commit()
        await #expect(throws: VecgoError.self) { try await b.commit() }
        _ = try await b.discardPending()
        try await app.test(.router) { client in
            try await client.waitUntilReady()
            #expect(try await client.call(.post, "/v1/search", #"{"vector": [1, 0, 0], "k": 1}"#).status == .ok)
            let m = try await client.call(.get, "/metrics")
            #expect(m.status == .ok)
            for series in ["vecgo_query_duration_seconds_bucket", "vecgo_query_duration_seconds_count",
                           #"vecgo_tier_hits_total{tier="ram"}"#, #"vecgo_tier_misses_total{tier="ram"}"#,
                           "vecgo_remote_requests_total", "vecgo_remote_bytes_total",
                           "vecgo_commits_total", "vecgo_commit_conflicts_total"] {
                #expect(m.text.contains(series), "\(series) missing from /metrics")
            }
            // Every series has a valid Prometheus name, Hummingbird's request series included.
            let names = m.text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.prefix { $0 != "{" && $0 != " " } }
            #expect(names.contains("hb_requests"))
            for n in names {
                #expect(n.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }, "\(n)")
            }
            // The query was counted (the series are process-wide: at least this query's).
            func value(_ series: String) -> Double {
                m.text.split(separator: "\n").first { $0.hasPrefix(series + " ") }?.split(separator: " ").last.flatMap { Double($0) } ?? 0
            }
            #expect(value(#"vecgo_tier_hits_total{tier="ram"}"#) + value(#"vecgo_tier_misses_total{tier="ram"}"#) >= 1)
            #expect(value("vecgo_remote_requests_total") >= 2)  // the reader's open, at least
            #expect(value("vecgo_remote_bytes_total") >= 1)
            #expect(value("vecgo_query_duration_seconds_count") >= 1)
            #expect(value("vecgo_commit_conflicts_total") >= 1)
        }
        try await a.close()
        try await b.close()
    }

    @Test func readyzWaitsForTheDatabaseAndHealthzDoesNot() async throws {
        let store = MemoryBlobStore()  // no database yet, and a reader cannot create one
        let app = try VecgoServer(Self.config(store, readOnly: true)).makeApplication()
        try await app.test(.router) { client in
            #expect(try await client.call(.get, "/healthz").status == .ok)
            let notYet = try await client.call(.get, "/readyz")
            #expect(notYet.status == .serviceUnavailable)
            #expect(notYet.errorCode == "unavailable")
            let search = try await client.call(.post, "/v1/search", #"{"vector": [1, 0, 0]}"#)
            #expect(search.status == .serviceUnavailable)
            // Once a database appears, the server opens it and becomes ready.
            let w = try await Vecgo.open(.remote(store), .create(dimension: 3, metric: .l2))
            try await w.upsert(id: 1, [1, 0, 0])
            try await w.close()
            try await client.waitUntilReady()
            #expect(try await client.call(.post, "/v1/search", #"{"vector": [1, 0, 0]}"#).status == .ok)
        }
    }

    @Test func aFreshReaderIsReadyWithinTwoStoreRoundTrips() async throws {
        // Segment reads fail: the open's background prefetch of segment footers (not needed to
        // be ready) is then never counted, and a readiness that needed them would never come.
        let noSegments = InterceptingStore(try await Self.populated(), onRead: { name in
            if name.hasPrefix("segment_") { throw StoreError(.network, "segment reads are off in this test") }
        })
        let recorder = RoundTripRecorder(noSegments, delayMillis: 5)
        var config = Self.config(recorder, readOnly: true)
        config.refreshInterval = 3600  // no refresh while counting
        try await Self.withServer(config) { _ in
            #expect(recorder.depth >= 1)
            #expect(recorder.depth <= 2, "ready after \(recorder.depth) sequential round trips (\(recorder.requests) requests)")
        }
    }

    @Test func shutdownCommitsPendingWrites() async throws {
        let store = MemoryBlobStore()
        try await Self.withServer(Self.config(store)) { client in
            let up = try await client.call(.post, "/v1/upsert", #"{"rows": [{"key": "k1", "vector": [1, 1, 1]}, {"key": "k2", "vector": [2, 2, 2]}]}"#)
            #expect(up.status == .ok, "\(up.text)")
            #expect(try await Vecgo.versions(.remote(store)).allSatisfy { $0.rows == 0 })
        }
        // The test closure returned: the service group shut down, and the database service committed.
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        #expect(await reader.versionInfo.rows == 2)
    }

    @Test func vecgoErrorCodesMapToStatuses() {
        let table: [(VecgoError.Code, HTTPResponse.Status)] = [
            (.invalidArgument, .badRequest), (.dimensionMismatch, .badRequest), (.readOnly, .forbidden),
            (.notFound, .notFound), (.conflict, .conflict), (.fenced, .conflict), (.timedOut, .serviceUnavailable),
            (.storage, .serviceUnavailable), (.unavailable, .serviceUnavailable), (.permissionDenied, .badGateway), (.closed, .serviceUnavailable), (.corrupted, .internalServerError),
            (.unsupportedFormat, .internalServerError),
        ]
        for (code, status) in table {
            let e = ServerError.from(VecgoError(code, "m"), logger: Logger(label: "test"))
            #expect(e.status == status, "\(code)")
            #expect(e.code == "\(code)")
        }
        // Anything else is a bare 500 that says nothing of the error.
        struct Secret: Error { var key = "AKIASECRET" }
        let other = ServerError.from(Secret(), logger: Logger(label: "test"))
        #expect(other.status == .internalServerError)
        #expect(!other.message.contains("AKIA"))
    }

    @Test func anUpsertWithOneBadRowWritesNothing() async throws {
        try await Self.withServer(Self.config(MemoryBlobStore())) { client in
            let bad = try await client.call(.post, "/v1/upsert", #"{"rows": [{"key": "ok", "vector": [1, 1, 1]}, {"key": "bad", "vector": [1]}]}"#)
            #expect(bad.status == .badRequest)
            #expect(bad.errorCode == "dimensionMismatch")
            #expect(try await client.call(.get, "/v1/info").json["pending"] as? Int == 0)
            let both = try await client.call(.post, "/v1/upsert", #"{"rows": [{"id": 1, "key": "k", "vector": [1, 1, 1]}]}"#)
            #expect(both.status == .badRequest)
            #expect(try await client.call(.get, "/v1/info").json["pending"] as? Int == 0)
        }
    }
}
