// openStore(url:): the store a command-line URL names (a local directory, s3://, DynamoDB commits).
import Foundation

/// Opens the store a command-line URL names: a local directory path (or `file://` URL), or
/// `s3://bucket/prefix` with credentials and region from the standard AWS environment
/// variables and an optional endpoint override (MinIO, moto, any S3-compatible server). A
/// bucket named like a directory bucket (`…--<az-id>--x-s3`) opens an ``S3ExpressStore``.
/// With `commitTable`, versions are committed through that DynamoDB table
/// (``DynamoDBCommitStore``, keyed by the URL), reached at `dynamoDBEndpoint` or where
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` point.
///
/// - Throws: ``StoreError`` `.invalidArgument` for an unusable URL, or what the S3 configuration throws.
public func openStore(url: String, endpoint: String? = nil, region: String? = nil, commitTable: String? = nil,
                      dynamoDBEndpoint: String? = nil) throws -> any BlobStore {
    let store = try openObjectStore(url: url, endpoint: endpoint, region: region)
    guard let commitTable else { return store }
    let config = DynamoDBConfiguration.fromEnvironment(table: commitTable, endpoint: dynamoDBEndpoint, region: region)
    return try DynamoDBCommitStore(objects: store, baseURI: url.hasSuffix("/") ? url : url + "/", configuration: config)
}

private func openObjectStore(url: String, endpoint: String?, region: String?) throws -> any BlobStore {
    if url.hasPrefix("s3://") {
        let rest = url.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard !bucket.isEmpty else {
            throw StoreError(.invalidArgument, "'\(url)' names no bucket; use s3://bucket/prefix")
        }
        var prefix = String(rest.dropFirst(bucket.count + 1))
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        let config = try S3Configuration.fromEnvironment(bucket: bucket, prefix: prefix, endpoint: endpoint, region: region)
        return bucket.hasSuffix("--x-s3") ? try S3ExpressStore(config) : try S3Store(config)
    }
    if url.contains("://") && !url.hasPrefix("file://") {
        throw StoreError(.invalidArgument, "unsupported store URL '\(url)': use a directory path or s3://bucket/prefix")
    }
    return try LocalDirectoryStore(root: url.hasPrefix("file://") ? String(url.dropFirst(7)) : url)
}
