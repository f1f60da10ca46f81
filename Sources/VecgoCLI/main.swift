// vecgo: inspect, verify and query a Vecgo database in any store.
//
//   vecgo info   <store-url> [store options]
//   vecgo verify <store-url> [store options] [--json]
//   vecgo search <store-url> --vector 0.1,0.2,... [-k 10] [store options]
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
        print("pk-index \(m.pkIndexObject) (\(m.pkIndexSize) bytes)")
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
