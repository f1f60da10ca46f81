// Reading every live row of a committed version back out, one segment at a time (what
// `vecgo export` streams).
import Foundation
import IndexCore
import SegmentFormat
import Stores

/// One live row of a version, as ``Vecgo/forEachLiveRow(_:)`` hands it out.
public struct LiveRow: Sendable, Hashable {
    /// The row's key.
    public var id: UInt64
    /// The stored vector (for the cosine metric: normalised, as it entered the index).
    public var vector: [Float]
    /// The row's metadata (a string key is under ``Vecgo/keyField``).
    public var metadata: Metadata
    /// The row's payload (empty when it has none).
    public var payload: [UInt8]

    public init(id: UInt64, vector: [Float], metadata: Metadata, payload: [UInt8]) {
        self.id = id
        self.vector = vector
        self.metadata = metadata
        self.payload = payload
    }
}

extension Vecgo {
    /// Hands `body` every live row of the committed version this handle sees (not its pending
    /// writes), one segment's rows per call, in segment order. Each segment is read whole from
    /// the store, bypassing the caches, and decoded off the actor: memory stays bounded by one
    /// segment whatever the size of the database.
    ///
    /// - Returns: the number of rows handed out.
    /// - Throws: ``VecgoError`` `.storage` or `.corrupted` when a segment cannot be read, or
    ///   what `body` throws.
    @discardableResult
    public nonisolated func forEachLiveRow(_ body: ([LiveRow]) async throws -> Void) async throws -> Int {
        let snapshot = await view
        let remote = self.remote, dimension = self.dimension
        let live: [Bitmap?]
        do { live = try await snapshot.live() } catch {
            throw VecgoError.wrap(error, "reading the key index of version \(snapshot.version)")
        }
        var count = 0
        for (i, segment) in snapshot.segments.enumerated() {
            let ref = segment.ref
            let rows: [LiveRow]
            do {
                rows = try await Task.detached { () throws -> [LiveRow] in
                    let contents = try SegmentCodec.decode(try await remote.read(ref.name, range: 0..<ref.size), object: ref.name)
                    guard contents.dimension == dimension, UInt64(contents.rowCount) == ref.rowCount else {
                        throw FormatError(.corrupted, object: ref.name, offset: 0,
                                          "it holds \(contents.rowCount) rows of dimension \(contents.dimension); the manifest says \(ref.rowCount) of \(dimension)")
                    }
                    var rows: [LiveRow] = []
                    rows.reserveCapacity(contents.rowCount)
                    for row in 0..<contents.rowCount where live[i]?.contains(row) ?? true {
                        rows.append(LiveRow(id: contents.ids[row],
                                            vector: Array(contents.vectors[row * dimension..<(row + 1) * dimension]),
                                            metadata: row < contents.metadata.count ? contents.metadata[row] : [:],
                                            payload: row < contents.payloads.count ? contents.payloads[row] : []))
                    }
                    return rows
                }.value
            } catch {
                throw VecgoError.wrap(error, "reading segment \(ref.name) of version \(snapshot.version)")
            }
            count += rows.count
            try await body(rows)
        }
        return count
    }
}
