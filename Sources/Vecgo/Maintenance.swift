public import Foundation
import IndexCore
import Logging
import SegmentFormat
import Stores
import Tiering

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
            // One input segment at a time, read whole from the store (not through the caches)
            // and decoded off the actor; the live rows go into a table that becomes an output
            // segment whenever it holds `.maxSegmentBytes` of vectors: memory stays bounded by
            // one input and one output, whatever the total. The layout of each output follows
            // from its rows (a graph is built only for a graph layout).
            let remote = self.remote, dimension = self.dimension, metric = self.metric
            var out = CompactionOutput(dimension: dimension, metric: metric)
            var dropped = 0
            for i in chosen {
                let ref = snapshot.segments[i].ref
                let contents = try await Task.detached {
                    try await remote.readChecked(ref.name, ranges: [0..<ref.size]) { parts in
                        try SegmentCodec.decode(parts[0], object: ref.name)
                    }
                }.value
                guard contents.dimension == dimension, UInt64(contents.rowCount) == ref.rowCount else {
                    throw FormatError(.corrupted, object: ref.name, offset: 0,
                                      "it holds \(contents.rowCount) rows of dimension \(contents.dimension); the manifest says \(ref.rowCount) of \(dimension)")
                }
                for row in 0..<contents.rowCount {
                    guard live[i]?.contains(row) ?? true else {
                        dropped += 1
                        continue
                    }
                    out.table.put(id: contents.ids[row],
                                  vector: Array(contents.vectors[row * dimension..<(row + 1) * dimension]),
                                  metadata: row < contents.metadata.count ? contents.metadata[row] : [:],
                                  payload: row < contents.payloads.count ? contents.payloads[row] : [])
                    out.origin.append((ref.name, UInt32(row)))
                    if out.table.count * dimension * 4 >= config.maxSegmentBytes { try await flushCompaction(&out) }
                }
            }
            try await flushCompaction(&out)
            var outputs = out.outputs
            let moved = out.moved, kept = out.kept
            let replaced = Set(chosen.map { snapshot.segments[$0].ref.name })
            let committed = try await commitManifest(label: "committing a compaction") { base in
                var m = try self.template(base)
                let names = m.segments.map(\.name)
                guard replaced.isSubset(of: names) else {
                    throw VecgoError(.conflict, "another compaction replaced some of these segments first (version \(base.version)); nothing was changed")
                }
                for i in outputs.indices {
                    if try await self.keepFresh(&outputs[i].object) { outputs[i].ref.name = outputs[i].object.name }
                }
                let oldPK = try await base.pk() ?? PKIndex(version: 0, segments: [], entries: [:])
                m.segments = m.segments.filter { !replaced.contains($0.name) } + outputs.map(\.ref)
                let ordinal = Dictionary(uniqueKeysWithValues: m.segments.enumerated().map { ($1.name, UInt32($0)) })
                var entries: [UInt64: PKIndex.Location] = [:]
                entries.reserveCapacity(oldPK.entries.count)
                for (key, loc) in oldPK.entries {
                    let segName = names[Int(loc.segment)]
                    if replaced.contains(segName) {
                        guard let to = moved[segName]?[loc.row] else {
                            throw VecgoError(.corrupted, "key \(key) points at row \(loc.row) of \(segName), which was not live when compacted")
                        }
                        entries[key] = PKIndex.Location(segment: ordinal[outputs[to.output].ref.name]!, row: to.row)
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

    /// Writes the rows gathered in `out.table` as an output segment of a compaction and notes
    /// where each input row went.
    private func flushCompaction(_ out: inout CompactionOutput) async throws {
        guard out.table.liveCount > 0 else { return }
        let built = try await buildSegment(out.table, tag: "c")
        for (key, newRow) in built.liveRows {
            guard let tableRow = out.table.rowOf[key] else { continue }
            let from = out.origin[tableRow]
            out.moved[from.segment, default: [:]][from.row] = (out.outputs.count, UInt32(newRow))
        }
        out.kept += out.table.liveCount
        out.outputs.append(built)
        out.table = Memtable(dimension: dimension, metric: metric)
        out.origin = []
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
            var referenced = pendingObjectNames  // this handle's pending rows written out
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
                config.logger.debug("vacuum deleted an object", metadata: ["object": "\(o.name)", "bytes": "\(o.size)"])
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
                config.logger.debug("vacuum deleted an object", metadata: ["object": "\(o.name)", "bytes": "\(o.size)"])
                report.manifestsDeleted += 1
                report.bytesDeleted += o.size
            }
            for o in listing where (o.name.hasPrefix("segment_") || o.name.hasPrefix("pkindex_")) && !referenced.contains(o.name) {
                guard old(o) else {
                    report.keptInGracePeriod += 1
                    continue
                }
                try await remote.delete(o.name)
                config.logger.debug("vacuum deleted an object", metadata: ["object": "\(o.name)", "bytes": "\(o.size)"])
                report.objectsDeleted += 1
                report.bytesDeleted += o.size
            }
            config.logger.info("vacuumed", metadata: [
                "manifestsDeleted": "\(report.manifestsDeleted)", "objectsDeleted": "\(report.objectsDeleted)",
                "bytesDeleted": "\(report.bytesDeleted)", "keptInGracePeriod": "\(report.keptInGracePeriod)"])
            return report
        } catch {
            throw VecgoError.wrap(error, "vacuuming")
        }
    }
}

/// The output side of a compaction: the table being filled, where its rows came from, the
/// segments written so far, and where each input row went.
struct CompactionOutput: Sendable {
    var table: Memtable
    var origin: [(segment: String, row: UInt32)] = []
    var outputs: [(ref: SegmentRef, liveRows: [UInt64: Int], object: Vecgo.OwnObject)] = []
    var moved: [String: [UInt32: (output: Int, row: UInt32)]] = [:]
    var kept = 0

    init(dimension: Int, metric: Metric) { table = Memtable(dimension: dimension, metric: metric) }
}
