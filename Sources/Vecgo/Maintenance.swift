public import Foundation
import IndexCore
import SegmentFormat
import Stores

/// What ``Vecgo/compact(maxRows:)`` did.
public struct CompactionReport: Sendable, Hashable {
    /// The version it committed (nil when there was nothing to compact).
    public var version: UInt64?
    /// Segments merged.
    public var segmentsMerged: Int
    /// Live rows written into the new segment.
    public var rowsKept: Int
    /// Superseded or deleted rows dropped.
    public var rowsDropped: Int
}

/// What ``Vecgo/vacuum(retainVersions:gracePeriod:)`` did.
public struct VacuumReport: Sendable, Hashable {
    /// The oldest version still kept.
    public var oldestRetainedVersion: UInt64
    /// Manifests deleted (versions no longer reachable).
    public var manifestsDeleted: Int
    /// Segments and pk-indexes deleted.
    public var objectsDeleted: Int
    /// Bytes reclaimed.
    public var bytesDeleted: UInt64
    /// Unreferenced objects kept because they are younger than the grace period (they may
    /// belong to a commit in flight).
    public var keptInGracePeriod: Int
}

extension Vecgo {
    /// Merges the segments of the newest version that are small (fewer than `maxRows` rows) or
    /// hold superseded and deleted rows into one segment of live rows, laid out by its size
    /// (flat, graph or IVF), and commits that as a new version. Readers keep using the
    /// versions they have; writers' concurrent commits merge with it (their changes to keys
    /// in the merged segments win). Pending writes of this handle are not touched.
    ///
    /// Run it in the background with `Task { try await db.compact() }`: the reads and the
    /// index build happen off this handle's actor.
    ///
    /// - Throws: ``VecgoError`` `.conflict` when another compaction replaced the same segments
    ///   first, `.readOnly`, `.storage`, `.corrupted`.
    @discardableResult
    public func compact(maxRows: Int? = nil) async throws -> CompactionReport {
        try checkWritable()
        let limit = UInt64(maxRows ?? config.ivfThreshold)
        do {
            let askedAt = ContinuousClock.now
            if let latest = try await Self.latestManifest(cached, after: view.version) {
                advance(to: VersionView(latest, store: cached, metric: metric, previous: view))
            }
            viewConfirmedAt = askedAt
            let snapshot = view
            let live = try await snapshot.live()
            let chosen = snapshot.segments.indices.filter { snapshot.segments[$0].ref.rowCount < limit || live[$0] != nil }
            guard chosen.count >= 2 || chosen.contains(where: { live[$0] != nil }) else {
                return CompactionReport(version: nil, segmentsMerged: 0, rowsKept: 0, rowsDropped: 0)
            }
            // Read and build off the actor: the heavy part never blocks this handle's other calls.
            let store = cached, dimension = self.dimension, metric = self.metric
            // The layout follows from the live rows copied; only a graph layout needs the graph
            // built while copying (for IVF and flat it would be wasted work).
            let copied = chosen.reduce(0) { $0 + (live[$1]?.cardinality ?? Int(snapshot.segments[$1].ref.rowCount)) }
            let layout = config.layout(rows: copied, dimension: dimension)
            let built = try await Task.detached { () async throws -> (SegmentContents, EncodedSegment, [String: [UInt32: UInt32]], Int, Int) in
                var table = Memtable(dimension: dimension, metric: metric, indexed: layout == .graph)
                var origin: [(segment: String, row: UInt32)] = []  // memtable row → where it came from
                var dropped = 0
                for i in chosen {
                    let s = snapshot.segments[i]
                    let contents = try SegmentCodec.decode(try await store.read(s.ref.name, range: 0..<s.ref.size), object: s.ref.name)
                    guard contents.dimension == dimension, UInt64(contents.rowCount) == s.ref.rowCount else {
                        throw FormatError(.corrupted, object: s.ref.name, offset: 0,
                                          "it holds \(contents.rowCount) rows of dimension \(contents.dimension); the manifest says \(s.ref.rowCount) of \(dimension)")
                    }
                    for row in 0..<contents.rowCount {
                        guard live[i]?.contains(row) ?? true else {
                            dropped += 1
                            continue
                        }
                        table.put(id: contents.ids[row],
                                  vector: Array(contents.vectors[row * dimension..<(row + 1) * dimension]),
                                  metadata: row < contents.metadata.count ? contents.metadata[row] : [:],
                                  payload: row < contents.payloads.count ? contents.payloads[row] : [])
                        origin.append((s.ref.name, UInt32(row)))
                    }
                }
                let (contents, liveRows) = table.contents(layout)
                let encoded = try SegmentCodec.encode(contents)
                // (old segment, old row) → new row, for remapping the pk-index.
                var moved: [String: [UInt32: UInt32]] = [:]
                for (key, newRow) in liveRows {
                    guard let memRow = table.rowOf[key] else { continue }
                    let from = origin[memRow]
                    moved[from.segment, default: [:]][from.row] = UInt32(newRow)
                }
                return (contents, encoded, moved, table.liveCount, dropped)
            }.value
            let (contents, encoded, moved, kept, dropped) = built
            var object = try await writeOwnSegment(encoded.bytes, tag: "c")
            var ref = SegmentRef(name: object.name, size: UInt64(encoded.bytes.count), tailOffset: encoded.tailOffset,
                                 tailLength: encoded.tailLength, rowCount: UInt64(contents.rowCount),
                                 minID: contents.ids.min() ?? 0, maxID: contents.ids.max() ?? 0)
            let replaced = Set(chosen.map { snapshot.segments[$0].ref.name })
            let committed = try await commitManifest(label: "committing a compaction") { base in
                var m = try self.template(base)
                let names = m.segments.map(\.name)
                guard replaced.isSubset(of: names) else {
                    throw VecgoError(.conflict, "another compaction replaced some of these segments first (version \(base.version)); nothing was changed")
                }
                if try await self.keepFresh(&object) { ref.name = object.name }
                let oldPK = try await base.pk() ?? PKIndex(version: 0, segments: [], entries: [:])
                m.segments = m.segments.filter { !replaced.contains($0.name) } + [ref]
                let ordinal = Dictionary(uniqueKeysWithValues: m.segments.enumerated().map { ($1.name, UInt32($0)) })
                var entries: [UInt64: PKIndex.Location] = [:]
                entries.reserveCapacity(oldPK.entries.count)
                for (key, loc) in oldPK.entries {
                    let segName = names[Int(loc.segment)]
                    if replaced.contains(segName) {
                        guard let newRow = moved[segName]?[loc.row] else {
                            throw VecgoError(.corrupted, "key \(key) points at row \(loc.row) of \(segName), which was not live when compacted")
                        }
                        entries[key] = PKIndex.Location(segment: ordinal[ref.name]!, row: newRow)
                    } else {
                        entries[key] = PKIndex.Location(segment: ordinal[segName]!, row: loc.row)
                    }
                }
                let index = PKIndex(version: m.version + 1, segments: m.segments.map(\.name), entries: entries)
                let built = try await self.writePKIndex(index, changes: nil, base: nil, deadRows: nil, into: &m)
                return NextVersion(manifest: m, pk: built)
            }
            return CompactionReport(version: committed.version, segmentsMerged: chosen.count, rowsKept: kept, rowsDropped: dropped)
        } catch {
            throw VecgoError.wrap(error, "compacting")
        }
    }

    /// Deletes what no retained version needs: manifests older than the newest
    /// `retainVersions`, then segments and pk-indexes that no retained manifest references.
    /// Objects younger than `gracePeriod` seconds are never deleted, so a commit in flight
    /// (objects written, manifest not yet created) is never broken; readers of retained
    /// versions are never broken either. The newest version is always kept. The grace period
    /// must be at least this handle's ``OpenOption/maxCommitObjectAge(_:)`` (and every other
    /// writer's).
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` for `retainVersions < 1` or a grace period
    ///   shorter than `maxCommitObjectAge`, `.readOnly`, `.storage`.
    @discardableResult
    public func vacuum(retainVersions: Int = 1, gracePeriod: TimeInterval = 3600) async throws -> VacuumReport {
        try checkWritable()
        guard retainVersions >= 1 else { throw VecgoError(.invalidArgument, "retainVersions must be at least 1, got \(retainVersions)") }
        guard gracePeriod >= config.maxCommitObjectAge, gracePeriod.isFinite else {
            throw VecgoError(.invalidArgument, "gracePeriod (\(gracePeriod) s) must be at least the writers' maxCommitObjectAge (\(config.maxCommitObjectAge) s): a commit may keep its objects unreferenced that long")
        }
        do {
            let listing = try await remote.list(prefix: "")
            let cutoff = Date().addingTimeInterval(-gracePeriod)
            func old(_ o: ObjectInfo) -> Bool { (o.lastModified ?? .distantFuture) <= cutoff }
            let manifests = listing.compactMap { o in Manifest.version(fromObjectName: o.name).map { ($0, o) } }.sorted { $0.0 < $1.0 }
            guard let newest = manifests.last?.0 else {
                return VacuumReport(oldestRetainedVersion: 0, manifestsDeleted: 0, objectsDeleted: 0, bytesDeleted: 0, keptInGracePeriod: 0)
            }
            let retained = manifests.suffix(retainVersions)
            var referenced: Set<String> = []
            for (v, _) in retained {
                let m = try await Self.manifestAt(version: v, remote)
                referenced.formUnion(m.segments.map(\.name))
                referenced.formUnion(m.pkIndexLayers.map(\.name))
            }
            var report = VacuumReport(oldestRetainedVersion: retained.first?.0 ?? newest, manifestsDeleted: 0,
                                      objectsDeleted: 0, bytesDeleted: 0, keptInGracePeriod: 0)
            // Staged manifests of DynamoDB commits first: the listing above finalised the
            // newest version, each commit finalises the one before it, so an old staged object
            // of a version up to the newest is a copy of a finalised manifest or lost its race.
            // One of a later version may belong to a commit in flight, whatever its age: kept.
            // Deleted before the manifests, none can bring back a version whose objects are gone.
            for o in listing where o.name.hasPrefix("staged_MANIFEST-") && old(o) {
                let version = Manifest.version(fromObjectName: String(o.name.dropFirst(7).prefix(29)) + ".bin")
                guard let version, version <= newest else { continue }
                try await remote.delete(o.name)
                report.objectsDeleted += 1
                report.bytesDeleted += o.size
            }
            // Manifests next, oldest first, stopping at the first one too young to delete: the
            // versions left are always the newest ones, contiguous, however the store's clocks
            // order their times (refreshes probe forward from a known version and rely on it),
            // and a crash midway leaves every remaining version whole.
            var keepFromHere = false
            for (v, o) in manifests.dropLast(retainVersions) where v != newest {
                keepFromHere = keepFromHere || !old(o)
                guard !keepFromHere else {
                    // Kept, so its objects are kept too.
                    report.keptInGracePeriod += 1
                    let m = try await Self.manifestAt(version: v, remote)
                    referenced.formUnion(m.segments.map(\.name))
                    referenced.formUnion(m.pkIndexLayers.map(\.name))
                    continue
                }
                try await remote.delete(o.name)
                report.manifestsDeleted += 1
                report.bytesDeleted += o.size
            }
            for o in listing where (o.name.hasPrefix("segment_") || o.name.hasPrefix("pkindex_")) && !referenced.contains(o.name) {
                guard old(o) else {
                    report.keptInGracePeriod += 1
                    continue
                }
                try await remote.delete(o.name)
                report.objectsDeleted += 1
                report.bytesDeleted += o.size
            }
            return report
        } catch {
            throw VecgoError.wrap(error, "vacuuming")
        }
    }
}
