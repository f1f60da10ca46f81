// The HTTP routes: search, writes, commit, info, health, readiness and metrics, each
// decoding its JSON body under the server's limits.
import Foundation
import Hummingbird
import IndexCore
import Prometheus
import Vecgo

/// The handlers of the API (docs/openapi.json).
struct Routes: Sendable {
    let configuration: VecgoServer.Configuration
    let holder: DatabaseHolder
    let registry: PrometheusCollectorRegistry

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in JSONResponse.make(StatusResponse(status: "ok")) }
        router.get("/readyz") { _, _ in
            guard let db = holder.db else {
                throw ServerError(.serviceUnavailable, code: "unavailable",
                                  "the database is not open yet" + (holder.lastError.map { " (last attempt: \($0))" } ?? ""))
            }
            return JSONResponse.make(StatusResponse(status: "ready", version: await db.version))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/v1/info") { _, _ in
            let db = try holder.require()
            let info = await db.versionInfo
            return JSONResponse.make(InfoResponse(dimension: db.dimension, metric: "\(db.metric)", version: info.version,
                                                  rows: info.rows, segments: info.segments, readOnly: db.isReadOnly,
                                                  pending: await db.pendingCount))
        }
        router.post("/v1/search") { request, _ in try await search(request) }
        router.post("/v1/upsert") { request, _ in try await upsert(request) }
        router.post("/v1/delete") { request, _ in try await delete(request) }
        router.post("/v1/commit") { _, _ in
            let db = try writer()
            let version = try await db.commit()
            return JSONResponse.make(CommitResponse(version: version, pending: await db.pendingCount))
        }
    }

    /// The body, decoded, within the size limit.
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let body = try await request.body.collect(upTo: configuration.limits.maxBodyBytes)
        guard body.readableBytes > 0 else { throw ServerError.badRequest("the request has no body; send a JSON object") }
        return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
    }

    /// The database, when this server writes (403 `readOnly` otherwise, before reading the body).
    func writer() throws -> Vecgo {
        guard !configuration.readOnly else {
            throw ServerError(.forbidden, code: "\(VecgoError.Code.readOnly)", "this server is read-only; send writes to a writer (vecgo serve --writer)")
        }
        return try holder.require()
    }

    func search(_ request: Request) async throws -> Response {
        let db = try holder.require()
        let r = try await decode(SearchRequest.self, request)
        let k = r.k ?? 10
        guard (1...configuration.limits.maxK).contains(k) else {
            throw ServerError.badRequest("k must be in 1...\(configuration.limits.maxK), got \(k)")
        }
        var options = SearchOptions()
        if let ef = r.ef {
            guard (1...10_000).contains(ef) else { throw ServerError.badRequest("ef must be in 1...10000, got \(ef)") }
            options.ef = ef
        }
        if let nprobe = r.nprobe {
            guard (1...65_536).contains(nprobe) else { throw ServerError.badRequest("nprobe must be in 1...65536, got \(nprobe)") }
            options.nprobe = nprobe
        }
        var include: Include = []
        for name in r.include ?? [] {
            switch name {
            case "metadata": include.insert(.metadata)
            case "payload": include.insert(.payload)
            case "vector": include.insert(.vector)
            default: throw ServerError.badRequest("include: unknown field '\(name)' (metadata, payload, vector)")
            }
        }
        let f = try r.filter.map { j throws(ServerError) in try filter(j) }
        let hits = try await db.search(r.vector, k: k, filter: f, include: include, options: options)
        let results = hits.map { h in
            SearchHit(id: h.id, key: h.key, distance: h.distance,
                      metadata: h.metadata.map { m in
                          m.filter { $0.key != Vecgo.keyField }.mapValues(JSONValue.init)
                      },
                      payload: h.payload.map { Data($0).base64EncodedString() }, vector: h.vector)
        }
        return JSONResponse.make(SearchResponse(version: await db.version, results: results))
    }

    func upsert(_ request: Request) async throws -> Response {
        let db = try writer()
        let r = try await decode(UpsertRequest.self, request)
        guard r.rows.count <= configuration.limits.maxBatchRows else {
            throw ServerError.badRequest("\(r.rows.count) rows in one request; at most \(configuration.limits.maxBatchRows)")
        }
        // Everything is checked before anything is written: a bad row leaves nothing half-applied.
        var rows: [(row: UpsertRow, metadata: Metadata, payload: [UInt8]?)] = []
        for (i, row) in r.rows.enumerated() {
            guard row.id == nil || row.key == nil else { throw ServerError.badRequest("rows[\(i)]: give id or key, not both") }
            guard row.vector.count == db.dimension else {
                throw ServerError(.badRequest, code: "\(VecgoError.Code.dimensionMismatch)",
                                  "rows[\(i)].vector has \(row.vector.count) dimensions, the database has \(db.dimension)")
            }
            if let j = row.vector.firstIndex(where: { !$0.isFinite }) {
                throw ServerError.badRequest("rows[\(i)].vector[\(j)] is not a finite number")
            }
            var payload: [UInt8]?
            if let p = row.payload {
                guard let d = Data(base64Encoded: p) else { throw ServerError.badRequest("rows[\(i)].payload is not base64") }
                payload = [UInt8](d)
            }
            rows.append((row, try metadata(row.metadata, "rows[\(i)].metadata"), payload))
        }
        var ids: [UInt64] = []
        for (row, meta, payload) in rows {
            if let key = row.key {
                try await db.upsert(key: key, row.vector, metadata: meta, payload: payload)
                ids.append(Vecgo.id(forKey: key))
            } else if let id = row.id {
                try await db.upsert(id: id, row.vector, metadata: meta, payload: payload)
                ids.append(id)
            } else {
                ids.append(try await db.insert(row.vector, metadata: meta, payload: payload))
            }
        }
        let version = r.commit == true ? try await db.commit() : nil
        return JSONResponse.make(WriteResponse(ids: ids, pending: await db.pendingCount, version: version))
    }

    func delete(_ request: Request) async throws -> Response {
        let db = try writer()
        let r = try await decode(DeleteRequest.self, request)
        let ids = (r.ids ?? []) + (r.keys ?? []).map(Vecgo.id(forKey:))
        guard !ids.isEmpty else { throw ServerError.badRequest("give ids or keys to delete") }
        guard ids.count <= configuration.limits.maxBatchRows else {
            throw ServerError.badRequest("\(ids.count) keys in one request; at most \(configuration.limits.maxBatchRows)")
        }
        for id in r.ids ?? [] { try await db.delete(id: id) }
        for key in r.keys ?? [] { try await db.delete(key: key) }
        let version = r.commit == true ? try await db.commit() : nil
        return JSONResponse.make(WriteResponse(ids: ids, pending: await db.pendingCount, version: version))
    }
}
