// The `vecgo` command: its subcommands, the store options every one of them shares, and how
// failures are reported (a new subcommand, `serve` say, is one more `ParsableCommand` file
// listed in `subcommands`).
import ArgumentParser
import Foundation
import Stores
import Vecgo

@main
struct VecgoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vecgo",
        abstract: "Inspect, verify, query, load and maintain a Vecgo database in any store.",
        discussion: """
            <store-url> is a local directory or s3://bucket/prefix; a bucket named <base>--<az-id>--x-s3 \
            is an S3 Express directory bucket. Credentials come from the AWS chain (AWS_ACCESS_KEY_ID / \
            AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws, web identity, container, \
            instance metadata); region from AWS_REGION. Exit status: 0 on success, 1 when `verify` finds \
            damage, 2 when a command fails, 64 for a usage error.
            """,
        subcommands: [Info.self, Verify.self, Search.self, Versions.self, Compact.self, Vacuum.self,
                      Import.self, Export.self, Serve.self])
}

/// Where the database is: the store URL and the options that reach the store, shared by every
/// subcommand.
struct StoreOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("A local directory or s3://bucket/prefix.", valueName: "store-url"))
    var url: String

    @Option(help: ArgumentHelp("The S3 endpoint (MinIO, moto, any S3-compatible server).", valueName: "url"))
    var endpoint: String?

    @Option(help: "The AWS region (default: AWS_REGION).")
    var region: String?

    @Option(name: .customLong("commit-table"),
            help: ArgumentHelp("Commit versions through this DynamoDB table (DynamoDBCommitStore).", valueName: "table"))
    var commitTable: String?

    @Option(name: .customLong("dynamodb-endpoint"),
            help: ArgumentHelp("The DynamoDB endpoint of --commit-table (default: AWS_ENDPOINT_URL_DYNAMODB).", valueName: "url"))
    var dynamoDBEndpoint: String?

    func validate() throws {
        if dynamoDBEndpoint != nil && commitTable == nil {
            throw ValidationError("--dynamodb-endpoint needs --commit-table")
        }
    }

    /// Opens the store these options name.
    func open() throws -> any BlobStore {
        try openStore(url: url, endpoint: endpoint, region: region, commitTable: commitTable, dynamoDBEndpoint: dynamoDBEndpoint)
    }
}

/// Runs a command's work, reporting a failure as `vecgo: <error>` on standard error with exit
/// status 2 (usage errors stay the parser's: its message and status 64).
func reportingFailure(_ work: () async throws -> Void) async throws {
    do {
        try await work()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("vecgo: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

/// Pretty, key-sorted JSON of `value`, as the `--json` outputs print it.
func prettyJSON(_ value: some Encodable) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try enc.encode(value), as: UTF8.self)
}

/// A user-facing failure of a subcommand (a bad input file, say); its message is the whole story.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
