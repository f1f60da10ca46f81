import IndexCore
import SegmentFormat
import Stores

/// A committed segment seen by a reader: its manifest entry, its footer once read, and reads
/// of its sections through the cache stack (nothing of the data is held beyond a query).
final class SegmentReader: Sendable {
    let ref: SegmentRef
    let store: any BlobStore
    private let footerTask: Locked<Task<SegmentFooter, any Error>?>

    init(ref: SegmentRef, store: any BlobStore) {
        self.ref = ref
        self.store = store
        self.footerTask = Locked(nil)
    }

    /// The footer, read once with one ranged read at the location the manifest gives.
    func footer() async throws -> SegmentFooter {
        let task = footerTask.withLock { t -> Task<SegmentFooter, any Error> in
            if let t { return t }
            let ref = self.ref, store = self.store
            let new = Task<SegmentFooter, any Error> {
                let tail = try await store.read(ref.name, range: ref.footerOffset..<ref.size)
                guard tail.count == Int(ref.tailLength) else {
                    throw FormatError(.truncated, object: ref.name, offset: ref.footerOffset + UInt64(tail.count),
                                      "segment is shorter than the \(ref.size) bytes its manifest records")
                }
                let trailer = try SegmentTrailer.decode(Array(tail.suffix(SegmentTrailer.size)), object: ref.name,
                                                        objectSize: ref.size)
                return try SegmentFooter.decode(Array(tail.prefix(Int(trailer.footerLength))), object: ref.name,
                                                offset: trailer.footerOffset, expectedCRC: trailer.footerCRC,
                                                objectSize: ref.size)
            }
            t = new
            return new
        }
        do {
            return try await task.value
        } catch {
            footerTask.withLock { $0 = nil }  // a failed read may succeed later
            throw error
        }
    }

    private func stored(_ d: SectionDescriptor) async throws -> [UInt8] {
        let bytes = try await store.read(ref.name, range: d.range)
        guard bytes.count == Int(d.storedLength) else {
            throw FormatError(.truncated, object: ref.name, offset: d.offset + UInt64(bytes.count),
                              "section \(d.kind) is cut short")
        }
        return bytes
    }

    /// Exact top-k of this segment's rows for `query`.
    func search(_ query: [Float], k: Int, metric: Metric) async throws -> [Neighbor] {
        let f = try await footer()
        guard f.rowCount > 0, let vd = f.section(.vectors), let idd = f.section(.ids) else { return [] }
        async let vectorBytes = stored(vd)
        async let idBytes = stored(idd)
        let vectors = try SegmentCodec.decodeVectors(try await vectorBytes, vd, footer: f, object: ref.name)
        let ids = try SegmentCodec.decodeIDs(try await idBytes, idd, footer: f, object: ref.name)
        var top = TopK(k: k)
        vectors.withUnsafeBufferPointer { v in
            FlatSearch.search(query: query, vectors: v, dimension: f.dimension, metric: metric, ids: ids,
                              into: &top)
        }
        return top.sorted()
    }
}
