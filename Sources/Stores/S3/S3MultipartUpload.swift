// S3Store's multipart uploads: CreateMultipartUpload, the parts in parallel with their CRC32C,
// CompleteMultipartUpload (conditional for a create-if-absent), and listing and aborting
// unfinished uploads so none are left behind.
import Foundation

extension S3Store {
    /// CreateMultipartUpload, the parts in parallel (`multipartConcurrency` at a time), then
    /// CompleteMultipartUpload — with `If-None-Match: *` for a create-if-absent. Each part
    /// carries its CRC32C (the upload is created with `x-amz-checksum-algorithm: CRC32C`, and
    /// the completion lists the parts' checksums, as S3 requires). Any failure
    /// or cancellation aborts the upload, so no parts are left behind.
    func multipartUpload(_ name: String, _ bytes: [UInt8], ifAbsent: Bool) async throws {
        let k = try key(name)
        let created: Answer
        do {
            created = try await send("POST", .write, key: k, query: [("uploads", "")],
                                       headers: [("x-amz-checksum-algorithm", "CRC32C")], object: name)
        } catch {
            // Interrupted while the server may have created the upload: abort whatever exists
            // for this key (object names are unique to their writer, so these are ours).
            _ = await Task { try? await self.abortUploads(ofKey: k) }.value
            throw error
        }
        guard created.status == 200, let uploadID = XMLScanner(created.body).first("UploadId") else {
            throw failure(created, "CREATE MULTIPART UPLOAD", object: name)
        }
        do {
            let partSize = max(5 << 20, configuration.multipartPartSize)
            let count = (bytes.count + partSize - 1) / partSize
            var etags = [String](repeating: "", count: count)
            var checksums = [String](repeating: "", count: count)
            try await withThrowingTaskGroup(of: (Int, String, String).self) { group in
                var next = 0
                func startNext() {
                    let i = next
                    next += 1
                    let part = Array(bytes[i * partSize..<min((i + 1) * partSize, bytes.count)])
                    group.addTask {
                        let checksum = TransferChecksum.uploadHeaders(part)
                        let a = try await self.send("PUT", .write, key: k, query: [("partNumber", String(i + 1)), ("uploadId", uploadID)],
                                                    headers: checksum, body: part, object: name)
                        guard a.status == 200, let etag = a.headers["etag"] else { throw self.failure(a, "UPLOAD PART \(i + 1)", object: name) }
                        return (i, etag, checksum[0].1)
                    }
                }
                for _ in 0..<min(max(1, configuration.multipartConcurrency), count) { startNext() }
                while let (i, etag, checksum) = try await group.next() {
                    etags[i] = etag
                    checksums[i] = checksum
                    if next < count { startNext() }
                }
            }
            let parts = etags.indices.map {
                "<Part><PartNumber>\($0 + 1)</PartNumber><ETag>\(etags[$0])</ETag><ChecksumCRC32C>\(checksums[$0])</ChecksumCRC32C></Part>"
            }
            let body = Array(("<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>").utf8)
            let done = try await send("POST", ifAbsent ? .conditionalWrite : .write, key: k, query: [("uploadId", uploadID)],
                                      headers: ifAbsent ? [("if-none-match", "*")] : [], body: body, object: name)
            // S3 may answer 200 with an error document when completion fails late.
            guard done.status == 200, XMLScanner(done.body).first("Code") == nil else {
                throw failure(done, ifAbsent ? "conditional COMPLETE MULTIPART UPLOAD" : "COMPLETE MULTIPART UPLOAD", object: name)
            }
        } catch {
            // Abort even when cancelled: a new task does not inherit the cancellation.
            _ = await Task { try? await self.send("DELETE", .write, key: k, query: [("uploadId", uploadID)], object: name) }.value
            throw error
        }
    }

    /// Multipart uploads started and neither completed nor aborted under this store's prefix
    /// (their object keys).
    public func pendingMultipartUploads() async throws -> [String] {
        try await uploads(prefix: configuration.prefix).map(\.key)
    }

    /// (key, upload id) of the unfinished multipart uploads whose keys start with `prefix`.
    private func uploads(prefix: String) async throws -> [(key: String, id: String)] {
        var out: [(key: String, id: String)] = []
        var markers: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let a = try await send("GET", .listing, key: nil, query: query, object: configuration.bucket)
            guard a.status == 200 else { throw failure(a, "LIST MULTIPART UPLOADS", object: configuration.bucket) }
            let xml = XMLScanner(a.body)
            out += xml.blocks("Upload").compactMap { u in
                guard let k = xml.first("Key", in: u), let id = xml.first("UploadId", in: u) else { return nil }
                return (k, id)
            }
            let previous = markers
            markers = nil
            if xml.first("IsTruncated") == "true", let k = xml.first("NextKeyMarker") {
                let next = (key: k, id: xml.first("NextUploadIdMarker") ?? "")
                if previous.map({ $0 != next }) ?? true { markers = next }  // a page that moves nothing ends it
            }
        } while markers != nil
        return out
    }

    private func abortUploads(ofKey k: String) async throws {
        // Directory buckets list uploads by whole directories only.
        for u in try await uploads(prefix: directoryBucket ? configuration.prefix : k) where u.key == k {
            _ = try await send("DELETE", .write, key: k, query: [("uploadId", u.id)], object: k)
        }
    }
}
