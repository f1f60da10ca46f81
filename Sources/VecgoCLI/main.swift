// vecgo: inspect, verify and query a Vecgo database in any store.
//
//   vecgo info   <store-url> [store options]
//   vecgo verify <store-url> [store options] [--json]
//   vecgo search <store-url> --vector 0.1,0.2,... [-k 10] [store options]
//   vecgo versions <store-url> [store options] [--json]
//   vecgo compact <store-url> [store options]
//   vecgo vacuum <store-url> [--retain N] [--grace SECONDS] [--max-commit-age SECONDS] [store options]
//
// <store-url> is a directory or s3://bucket/prefix (credentials from AWS_* variables); see usage.
import Foundation
import Stores
import Vecgo

let usage = """
    usage:
      vecgo info   <store-url> [store options]
      vecgo verify <store-url> [store options] [--json]
      vecgo search <store-url> --vector v1,v2,... [-k N] [store options]
      vecgo versions <store-url> [store options] [--json]
      vecgo compact <store-url> [store options]            (writes: merges small segments)
      vecgo vacuum <store-url> [--retain N] [--grace S] [--max-commit-age A] [store options]
                                                           (deletes: keeps the N newest versions
                                                            and objects younger than S seconds;
                                                            S must be at least A, the writers'
                                                            maxCommitObjectAge, default 600)
    store options: [--endpoint URL] [--region R] [--commit-table T [--dynamodb-endpoint URL]]
    <store-url> is a local directory or s3://bucket/prefix; a bucket named <base>--<az-id>--x-s3
    is an S3 Express directory bucket. Credentials come from the AWS chain (AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws, web identity, container,
    instance metadata); region from AWS_REGION. --commit-table names the DynamoDB table the
    database commits through (DynamoDBCommitStore).
    """

struct CLIError: Error, CustomStringConvertible { var description: String }

struct Arguments {
    var command = ""
    var url = ""
    var endpoint: String?
    var region: String?
    var commitTable: String?
    var dynamoDBEndpoint: String?
    var json = false
    var vector: [Float] = []
    var k = 10
    var retain = 10
    var grace = 3600.0
    var maxCommitAge = 600.0

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
            case "--commit-table": commitTable = try value()
            case "--dynamodb-endpoint": dynamoDBEndpoint = try value()
            case "--json": json = true
            case "-k": k = Int(try value()) ?? 0
            case "--retain":
                guard let n = Int(try value()), n >= 1 else { throw CLIError(description: "--retain needs a whole number of at least 1") }
                retain = n
            case "--max-commit-age":
                guard let t = Double(try value()), t > 0, t.isFinite else { throw CLIError(description: "--max-commit-age needs a positive number of seconds") }
                maxCommitAge = t
            case "--grace":
                guard let t = Double(try value()), t >= 0, t.isFinite else { throw CLIError(description: "--grace needs a number of seconds") }
                grace = t
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
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region, commitTable: a.commitTable,
                              dynamoDBEndpoint: a.dynamoDBEndpoint)
    let db = try await Vecgo.open(.remote(store), .readOnly)
    let manifests = try await store.list(prefix: "MANIFEST-")
    print("version \(await db.version) (\(manifests.count) versions kept), dimension \(db.dimension), metric \(db.metric)")
    if let latest = manifests.last {
        let m = try Manifest.decode(try await store.read(latest.name), object: latest.name)
        let layers = m.pkIndexLayers
        if layers.count > 1 {
            print("pk-index in \(layers.count) layers, \(layers.reduce(0) { $0 + $1.size }) bytes (a full index, then deltas, oldest first):")
            for (i, l) in layers.enumerated() { print("  \(i == 0 ? "full " : "delta") \(l.name) (\(l.size) bytes)") }
        } else {
            print("pk-index \(m.pkIndexObject) (\(m.pkIndexSize) bytes)")
        }
        for s in m.segments { print("segment \(s.name): \(s.rowCount) rows, \(s.size) bytes, ids \(s.minID)...\(s.maxID)") }
    }
}

func verify(_ a: Arguments) async throws -> Bool {
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region, commitTable: a.commitTable,
                              dynamoDBEndpoint: a.dynamoDBEndpoint)
    let report = try await Vecgo.verify(store)
    if a.json {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(report), as: UTF8.self))
    } else {
        print("checked \(report.manifests) manifests, \(report.segments) segments, \(report.pkIndexes) pk-indexes: "
              + (report.ok ? "all good" : "\(report.problems.count) problems"))
        for p in report.problems { print("DAMAGED \(p.object): \(p.problem)") }
    }
    return report.ok
}

func search(_ a: Arguments) async throws {
    let store = try openStore(url: a.url, endpoint: a.endpoint, region: a.region, commitTable: a.commitTable,
                              dynamoDBEndpoint: a.dynamoDBEndpoint)
    let db = try await Vecgo.open(.remote(store), .readOnly)
    for hit in try await db.search(a.vector, k: a.k) { print("\(hit.id)\t\(hit.distance)") }
}

func openStore(_ a: Arguments) throws -> any BlobStore {
    try openStore(url: a.url, endpoint: a.endpoint, region: a.region, commitTable: a.commitTable, dynamoDBEndpoint: a.dynamoDBEndpoint)
}

func versions(_ a: Arguments) async throws {
    let all = try await Vecgo.versions(.remote(try openStore(a)))
    if a.json {
        struct Row: Encodable { var version: UInt64; var commitTime: String; var segments: Int; var rows: UInt64; var writerEpoch: UInt64 }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let rows = all.map { Row(version: $0.version, commitTime: ISO8601DateFormatter().string(from: $0.commitTime), segments: $0.segments,
                                 rows: $0.rows, writerEpoch: $0.writerEpoch) }
        print(String(decoding: try enc.encode(rows), as: UTF8.self))
        return
    }
    print("version\tcommitted\tsegments\trows\tepoch")
    for v in all { print("\(v.version)\t\(ISO8601DateFormatter().string(from: v.commitTime))\t\(v.segments)\t\(v.rows)\t\(v.writerEpoch)") }
}

func compact(_ a: Arguments) async throws {
    let db = try await Vecgo.open(.remote(try openStore(a)))
    let r = try await db.compact()
    try await db.close()
    if let v = r.version {
        print("compacted into version \(v): \(r.segmentsMerged) segments merged, \(r.rowsKept) rows kept, \(r.rowsDropped) dropped")
    } else {
        print("nothing to compact")
    }
}

func vacuum(_ a: Arguments) async throws {
    // The grace period must cover the writers' maxCommitObjectAge, which --max-commit-age states.
    let db = try await Vecgo.open(.remote(try openStore(a)), .maxCommitObjectAge(a.maxCommitAge))
    let r = try await db.vacuum(retainVersions: a.retain, gracePeriod: a.grace)
    try await db.close()
    print("kept versions from \(r.oldestRetainedVersion); deleted \(r.manifestsDeleted) manifests and \(r.objectsDeleted) objects (\(r.bytesDeleted) bytes); \(r.keptInGracePeriod) kept for the grace period")
}

do {
    let a = try Arguments(Array(CommandLine.arguments.dropFirst()))
    switch a.command {
    case "info": try await info(a)
    case "verify": if try await !verify(a) { exit(1) }
    case "search": try await search(a)
    case "versions": try await versions(a)
    case "compact": try await compact(a)
    case "vacuum": try await vacuum(a)
    default: throw CLIError(description: "unknown command '\(a.command)'\n\(usage)")
    }
} catch {
    FileHandle.standardError.write("vecgo: \(error)\n".data(using: .utf8)!)
    exit(2)
}
