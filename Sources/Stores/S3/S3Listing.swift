// S3Store's listing: ListObjectsV2 with pagination, and reading its XML answer into
// `ObjectInfo`s (directory buckets filtered here).
import Foundation

extension S3Store {
    /// The objects whose names start with `prefix` (and sort after `startAfter`), by name:
    /// ListObjectsV2 page by page (`listPageSize` keys each) until the answer is no longer truncated.
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        var result: [ObjectInfo] = []
        var token: String?
        repeat {
            // A directory bucket lists whole directories only (and has no start-after): ask for
            // the store's prefix and filter here.
            let asked = directoryBucket ? configuration.prefix : configuration.prefix + prefix
            var query = [("list-type", "2"), ("prefix", asked), ("max-keys", String(max(1, min(1000, configuration.listPageSize))))]
            if let token { query.append(("continuation-token", token)) } else if let startAfter, !directoryBucket {
                query.append(("start-after", configuration.prefix + startAfter))
            }
            let a = try await send("GET", .listing, key: nil, query: query, object: prefix)
            guard a.status == 200 else { throw failure(a, "LIST", object: prefix) }
            let xml = XMLScanner(a.body)
            for entry in xml.blocks("Contents") {
                guard let k = xml.first("Key", in: entry), let size = xml.first("Size", in: entry).flatMap(UInt64.init),
                      k.hasPrefix(configuration.prefix) else {
                    throw StoreError(.invalidResponse, "LIST answered an entry without a usable Key and Size", object: prefix)
                }
                let name = String(k.dropFirst(configuration.prefix.count))
                if directoryBucket && (!name.hasPrefix(prefix) || startAfter.map({ name <= $0 }) ?? false) { continue }
                result.append(ObjectInfo(name: name, size: size,
                                         lastModified: xml.first("LastModified", in: entry).flatMap(parseISO8601)))
            }
            token = xml.first("IsTruncated") == "true" ? xml.first("NextContinuationToken") : nil
        } while token != nil
        return result.sorted { $0.name < $1.name }
    }
}
