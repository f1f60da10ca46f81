// The server checked against its OpenAPI document (docs/openapi.json): every documented
// operation answers, with a documented status, and its body carries the documented fields.
import Foundation
import Hummingbird
import HummingbirdTesting
import Stores
import Testing
import Vecgo
@testable import VecgoServer

@Suite struct OpenAPITests {
    nonisolated(unsafe) static let document: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.json")
        let data = (try? Data(contentsOf: url)) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }()

    /// Follows a `$ref` within the document.
    static func resolve(_ node: [String: Any]) -> [String: Any] {
        guard let ref = node["$ref"] as? String else { return node }
        var at: Any = document
        for part in ref.dropFirst(2).split(separator: "/") { at = (at as? [String: Any])?[String(part)] as Any }
        return resolve(at as? [String: Any] ?? [:])
    }

    /// The problems of `value` against `schema`: missing required fields and wrong types, recursively.
    static func problems(_ value: Any, _ schemaNode: [String: Any], at path: String = "$") -> [String] {
        let schema = resolve(schemaNode)
        var out: [String] = []
        switch schema["type"] as? String {
        case "object":
            guard let o = value as? [String: Any] else { return ["\(path) is not an object"] }
            for field in schema["required"] as? [String] ?? [] where o[field] == nil { out.append("\(path).\(field) is missing") }
            let props = schema["properties"] as? [String: Any] ?? [:]
            for (k, v) in o {
                if let p = props[k] as? [String: Any] { out += problems(v, p, at: "\(path).\(k)") }
            }
        case "array":
            guard let a = value as? [Any] else { return ["\(path) is not an array"] }
            if let items = schema["items"] as? [String: Any] {
                for (i, v) in a.enumerated() { out += problems(v, items, at: "\(path)[\(i)]") }
            }
        case "integer": if !(value is NSNumber) || (value as? Double).map({ $0 != $0.rounded() }) == true { out.append("\(path) is not an integer") }
        case "number": if !(value is NSNumber) { out.append("\(path) is not a number") }
        case "string": if !(value is String) { out.append("\(path) is not a string") }
        case "boolean": if !(value is NSNumber) { out.append("\(path) is not a boolean") }
        default: break
        }
        return out
    }

    @Test func theDocumentIsThere() {
        #expect(Self.document["openapi"] as? String == "3.0.3")
        #expect((Self.document["paths"] as? [String: Any])?.count == 8)
    }

    @Test func everyDocumentedOperationAnswersAsDocumented() async throws {
        let store = try await VecgoServerTests.populated()
        // Reads first, then writes, so each runs against data.
        let order = ["/healthz", "/readyz", "/v1/info", "/v1/search", "/metrics", "/v1/upsert", "/v1/delete", "/v1/commit"]
        #expect(Set(order) == Set((Self.document["paths"] as? [String: Any] ?? [:]).keys))
        try await VecgoServerTests.withServer(VecgoServerTests.config(store, create: false)) { client in
            let paths = Self.document["paths"] as? [String: [String: Any]] ?? [:]
            for path in order {
                for (method, opAny) in paths[path] ?? [:] {
                    let op = opAny as? [String: Any] ?? [:]
                    let content = ((op["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any]
                    let body = try content?["example"].map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
                    let r = try await client.call(method == "get" ? .get : .post, path, body)
                    let responses = op["responses"] as? [String: Any] ?? [:]
                    let documented = responses["\(r.status.code)"] as? [String: Any]
                    #expect(documented != nil, "\(method) \(path) answered \(r.status.code), not documented: \(r.text)")
                    #expect(r.status == .ok, "\(method) \(path): \(r.text)")
                    let spec = (Self.resolve(documented ?? [:])["content"] as? [String: Any])?["application/json"] as? [String: Any]
                    if let schema = spec?["schema"] as? [String: Any] {
                        let value = try JSONSerialization.jsonObject(with: Data(r.text.utf8))
                        let found = Self.problems(value, schema)
                        #expect(found.isEmpty, "\(method) \(path): \(found) in \(r.text)")
                    }
                    if let example = content?["example"] {
                        // The documented example is itself valid against the request schema.
                        let requestSchema = content?["schema"] as? [String: Any] ?? [:]
                        let exampleProblems = Self.problems(example, requestSchema)
                        #expect(exampleProblems.isEmpty, "\(path) example")
                    }
                }
            }
            // An error answer carries the documented error fields.
            let bad = try await client.call(.post, "/v1/search", "{}")
            let errorSchema = ["$ref": "#/components/schemas/Error"]
            #expect(Self.problems(try JSONSerialization.jsonObject(with: Data(bad.text.utf8)), errorSchema).isEmpty, "\(bad.text)")
        }
    }
}
