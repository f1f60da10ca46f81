// vecgo: inspect, verify and query a Vecgo database in any store.
//
//   vecgo info   <store-url> [--endpoint URL] [--region R]
//   vecgo verify <store-url> [--endpoint URL] [--region R] [--json]
//   vecgo search <store-url> --vector 0.1,0.2,... [-k 10] [--endpoint URL] [--region R]
//
// <store-url> is a directory or s3://bucket/prefix (credentials from AWS_* variables).
import Foundation
import Stores
import Vecgo

let usage = """
    usage:
      vecgo info   <store-url> [--endpoint URL] [--region R]
      vecgo verify <store-url> [--endpoint URL] [--region R] [--json]
      vecgo search <store-url> --vector v1,v2,... [-k N] [--endpoint URL] [--region R]
    <store-url> is a local directory or s3://bucket/prefix; S3 credentials come from
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), AWS_REGION.
    """

struct CLIError: Error, CustomStringConvertible { var description: String }

struct Arguments {
    var command = ""
    var url = ""
    var endpoint: String?
    var region: String?
    var json = false
    var vector: [Float] = []
    var k = 10

    init(_ args: [String]) throws {
        var it = args.makeIterator()
        guard let c = it.next() else { throw CLIError(description: usage) }
        command = c
        while let a = it.next() {
            func value() throws -> String {
                guard let v = it.next() else { throw CLIError(description: "\(a) needs a value") }
                return v
            }
            switch a {
            case "--endpoint": endpoint = try value()
            case "--region": region = try value()
            case "--json": json = true
            case "-k": k = Int(try value()) ?? 0
            case "--vector":
                let parts = try value().split(separator: ",")
                vector = try parts.map {
                    guard let f = Float($0.trimmingCharacters(in: .whitespaces)) else {
                        throw CLIError(description: "'\($0)' in --vector is not a number")
                    }
                    return f
                }
            default:
                guard url.isEmpty, !a.hasPrefix("-") else { throw CLIError(description: "unexpected argument '\(a)'\n\(usage)") }
                url = a
            }
        }
        guard !url.isEmpty else { throw CLIError(description: "missing <store-url>\n\(usage)") }
    }
}

func metricName(_ code: UInt8) -> String { Metric(rawValue: code)?.description ?? "unknown(\(code))" }

func info(_ a: Arguments) async throws {
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region)
    let db = try await Vecgo.open(.remote(store), .readOnly)
    let manifests = try await store.list(prefix: "MANIFEST-")
    print("version \(await db.version) (\(manifests.count) versions kept), dimension \(db.dimension), metric \(db.metric)")
    if let latest = manifests.last {
        let m = try Manifest.decode(try await store.read(latest.name), object: latest.name)
        print("pk-index \(m.pkIndexObject) (\(m.pkIndexSize) bytes)")
        for s in m.segments { print("segment \(s.name): \(s.rowCount) rows, \(s.size) bytes, ids \(s.minID)...\(s.maxID)") }
    }
}

/// One problem `verify` found.
struct Problem: Codable {
    var object: String
    var problem: String
}

func verify(_ a: Arguments) async throws -> Bool {
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region)
    let listing = try await store.list(prefix: "")
    let sizes = Dictionary(listing.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
    var problems: [Problem] = []
    var checked: [String: Bool] = [:]
    var manifests = 0, segments = 0, pkIndexes = 0
    for o in listing where Manifest.version(fromObjectName: o.name) != nil {
        manifests += 1
        let m: Manifest
        do { m = try Manifest.decode(try await store.read(o.name), object: o.name) } catch {
            problems.append(Problem(object: o.name, problem: "\(error)"))
            continue
        }
        if Manifest.version(fromObjectName: o.name) != m.version {
            problems.append(Problem(object: o.name, problem: "records version \(m.version), its name says otherwise"))
        }
        for s in m.segments where checked[s.name] == nil {
            segments += 1
            guard let size = sizes[s.name] else {
                problems.append(Problem(object: s.name, problem: "missing (referenced by \(o.name))"))
                checked[s.name] = false
                continue
            }
            do {
                guard size == s.size else { throw CLIError(description: "is \(size) bytes, \(o.name) records \(s.size)") }
                let c = try SegmentCodec.decode(try await store.read(s.name), object: s.name)
                guard c.rowCount == Int(s.rowCount) else { throw CLIError(description: "holds \(c.rowCount) rows, \(o.name) records \(s.rowCount)") }
                checked[s.name] = true
            } catch {
                problems.append(Problem(object: s.name, problem: "\(error)"))
                checked[s.name] = false
            }
        }
        if !m.pkIndexObject.isEmpty && checked[m.pkIndexObject] == nil {
            pkIndexes += 1
            do {
                guard sizes[m.pkIndexObject] != nil else { throw CLIError(description: "missing (referenced by \(o.name))") }
                _ = try PKIndex.decode(try await store.read(m.pkIndexObject), object: m.pkIndexObject)
                checked[m.pkIndexObject] = true
            } catch {
                problems.append(Problem(object: m.pkIndexObject, problem: "\(error)"))
                checked[m.pkIndexObject] = false
            }
        }
    }
    if a.json {
        struct Report: Codable { var manifests, segments, pk_indexes: Int; var ok: Bool; var problems: [Problem] }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(Report(manifests: manifests, segments: segments, pk_indexes: pkIndexes,
                                                     ok: problems.isEmpty, problems: problems)), as: UTF8.self))
    } else {
        print("checked \(manifests) manifests, \(segments) segments, \(pkIndexes) pk-indexes: \(problems.isEmpty ? "all good" : "\(problems.count) problems")")
        for p in problems { print("DAMAGED \(p.object): \(p.problem)") }
    }
    return problems.isEmpty
}

func search(_ a: Arguments) async throws {
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region)
    let db = try await Vecgo.open(.remote(store), .readOnly)
    for hit in try await db.search(a.vector, k: a.k) { print("\(hit.id)\t\(hit.distance)") }
}

do {
    let a = try Arguments(Array(CommandLine.arguments.dropFirst()))
    switch a.command {
    case "info": try await info(a)
    case "verify": if try await !verify(a) { exit(1) }
    case "search": try await search(a)
    default: throw CLIError(description: "unknown command '\(a.command)'\n\(usage)")
    }
} catch {
    FileHandle.standardError.write("vecgo: \(error)\n".data(using: .utf8)!)
    exit(2)
}
