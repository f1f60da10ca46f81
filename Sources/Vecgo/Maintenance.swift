// Maintenance: compaction (merging small segments, dropping dead rows, its key-index layer)
// and vacuum (deleting what no retained version needs).
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
            if let latest = try await Self.latestManifest(cached, commits: commits, after: view.version) {
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
            // Inputs are read a few at a time (each whole, decoded off the actor) and their
            // rows taken in order: reads overlap, memory stays a window of inputs.
            try await withThrowingTaskGroup(of: (Int, SegmentContents).self) { group in
                var started = 0, taken = 0
                var ready: [Int: SegmentContents] = [:]
                func start() {
                    let (n, ref) = (started, snapshot.segments[chosen[started]].ref)
                    group.addTask {
                        (n, try await remote.readChecked(ref.name, ranges: [0..<ref.size]) { parts in
                            try SegmentCodec.decode(parts[0], object: ref.name)
                        })
                    }
                    started += 1
                }
                while started < min(Self.compactionReadWindow, chosen.count) { start() }
                while taken < chosen.count {
                    while ready[taken] == nil {
                        guard let (n, contents) = try await group.next() else { break }
                        ready[n] = contents
                    }
                    guard let contents = ready.removeValue(forKey: taken) else { break }
                    let i = chosen[taken]
                    taken += 1
                    if started < chosen.count { start() }
                    let ref = snapshot.segments[i].ref
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
            }
            try await flushCompaction(&out)
            var outputs = out.outputs
            let kept = out.kept, movedRows = out.movedRows
            let replaced = Set(chosen.map { snapshot.segments[$0].ref.name })
            let snapshotLayers = Set(snapshot.manifest?.pkIndexLayers.map(\.name) ?? [])
            var layer: CompactionLayer?  // the key-index layer of the last attempt, reused while it fits
            var attempts = 0
            let committed = try await commitManifest(label: "committing a compaction") { base in
                attempts += 1
                var m = try self.template(base)
                let names = m.segments.map(\.name)
                guard replaced.isSubset(of: names) else {
                    throw VecgoError(.conflict, "another compaction replaced some of these segments first (version \(base.version)); nothing was changed")
                }
                for i in outputs.indices {
                    if try await self.keepFresh(&outputs[i].object) { outputs[i].ref.name = outputs[i].object.name }
                }
                if try await self.placeCompactionLayer(on: base, snapshotLayers: snapshotLayers, replaced: replaced,
                                                       outputs: outputs.map(\.ref), moved: movedRows, lostARace: attempts > 1,
                                                       reusing: &layer, into: &m) {
                    return NextVersion(manifest: m)
                }
                // The general way: a full key index of the new version.
                var moved: [String: [UInt32: (output: Int, row: UInt32)]] = [:]
                for r in movedRows { moved[r.from, default: [:]][r.fromRow] = (r.output, r.row) }
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

    /// Input segments a compaction reads at once.
    static let compactionReadWindow = 8

    /// Points `m` (a copy of `base`'s manifest) at the compaction's result the cheap way, so a
    /// compaction that loses races to steady writers does not redo its work on every attempt:
    /// the outputs replace the inputs, and one delta layer moves each key still where the
    /// compaction found it to its output row. That layer goes into `base`'s chain right after
    /// the last layer the compaction's own snapshot had (the layers that may point into the
    /// inputs), before the layers of commits made since, so their changes win when the layers
    /// are combined. The layer is written once and reused by later attempts while the chain
    /// below it, its entries and its outputs stay the same.
    ///
    /// Until the compaction has lost a race (`lostARace`), the layer is used only where a
    /// commit would write a delta too (the writer's rule, ``writePKIndex``): a compaction
    /// that wins at once leaves a short chain. Returns false, changing nothing, when the cheap
    /// way does not apply (no key index or live-row hints in `base`, a newer layer pointing into
    /// the inputs, the keys found do not account for every live input row, or the rule): the
    /// caller then writes a full index.
    func placeCompactionLayer(on base: VersionView, snapshotLayers: Set<String>, replaced: Set<String>,
                              outputs: [SegmentRef], moved: [MovedRow], lostARace: Bool,
                              reusing previous: inout CompactionLayer?, into m: inout Manifest) async throws -> Bool {
        guard let bm = base.manifest, !bm.pkIndexObject.isEmpty, let chain = try await base.pkChain() else { return false }
        let pk = chain.index
        let deadRows = bm.segments.compactMap(\.deadRows)  // saturated counts say nothing exact
        guard deadRows.count == bm.segments.count, deadRows.allSatisfy({ $0 < UInt64(UInt32.max) }) else { return false }
        let layers = bm.pkIndexLayers
        let below = (layers.lastIndex { snapshotLayers.contains($0.name) } ?? 0) + 1
        let since = Array(layers[below...])
        for layer in try await VersionView.readLayers(since, cached) where !replaced.isDisjoint(with: layer.index.segments) {
            config.logger.debug("a newer pk-index layer points into compacted segments: writing a full index",
                                metadata: ["layer": "\(layer.name)"])
            return false
        }
        // Keys still at the row the compaction copied: unchanged since its snapshot.
        let baseNames = bm.segments.map(\.name)
        var entries: [UInt64: (output: Int, row: UInt32)] = [:]
        entries.reserveCapacity(moved.count)
        for r in moved {
            if let at = pk.entries[r.key], baseNames[Int(at.segment)] == r.from, at.row == r.fromRow {
                entries[r.key] = (r.output, r.row)
            }
        }
        let liveInInputs = bm.segments.indices.filter { replaced.contains(baseNames[$0]) }
            .reduce(UInt64(0)) { $0 + bm.segments[$1].rowCount - min(deadRows[$1], bm.segments[$1].rowCount) }
        guard liveInInputs == UInt64(entries.count) else { return false }
        guard lostARace || (bm.pkIndexLayers.count < Self.maxPKIndexLayers
                            && 2 * (chain.deltaEntries + entries.count) <= chain.fullEntries) else { return false }

        var liveInOutput = [UInt64](repeating: 0, count: outputs.count)
        for e in entries.values { liveInOutput[e.output] += 1 }
        let used = outputs.indices.filter { liveInOutput[$0] > 0 }
        let usedNames = used.map { outputs[$0].name }
        let prefix = layers[..<below].map(\.name)
        let fresh = previous.map { ContinuousClock.now - $0.written <= .seconds(config.maxCommitObjectAge / 2) } ?? false
        let same = previous.map { p in
            p.below == prefix && p.segments == usedNames && p.entries.count == entries.count
                && entries.allSatisfy { k, e in p.entries[k].map { $0 == e } ?? false }
        } ?? false
        if !(fresh && same) {
            let local = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, UInt32($0)) })
            let bytes = try PKIndex(version: m.version + 1, segments: usedNames,
                                    entries: entries.mapValues { PKIndex.Location(segment: local[$0.output]!, row: $0.row) },
                                    kind: .delta).encode()
            let name = pkIndexName(version: m.version + 1)
            let written = ContinuousClock.now
            try await remote.put(name, bytes)
            previous = CompactionLayer(layer: PKIndexLayer(name: name, size: UInt64(bytes.count)), below: prefix,
                                       segments: usedNames, entries: entries, written: written)
        }
        let newChain = Array(layers[..<below]) + [previous!.layer] + since
        m.segments = zip(bm.segments, deadRows).filter { !replaced.contains($0.0.name) }.map { ref, dead in
            var ref = ref
            ref.deadRows = dead
            return ref
        } + outputs.indices.map { i in
            var ref = outputs[i]
            ref.deadRows = ref.rowCount - liveInOutput[i]
            return ref
        }
        m.pkIndexBaseLayers = Array(newChain.dropLast())
        m.pkIndexObject = newChain.last!.name
        m.pkIndexSize = newChain.last!.size
        return true
    }

    /// Writes the rows gathered in `out.table` as an output segment of a compaction and notes
    /// where each input row went.
    private func flushCompaction(_ out: inout CompactionOutput) async throws {
        guard out.table.liveCount > 0 else { return }
        let built = try await buildSegment(out.table, tag: "c")
        for (key, newRow) in built.liveRows {
            guard let tableRow = out.table.rowOf[key] else { continue }
            let from = out.origin[tableRow]
            out.movedRows.append(MovedRow(key: key, from: from.segment, fromRow: from.row, output: out.outputs.count, row: UInt32(newRow)))
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
    /// Where each copied row went.
    var movedRows: [MovedRow] = []
    var kept = 0

    init(dimension: Int, metric: Metric) { table = Memtable(dimension: dimension, metric: metric) }
}

/// A live row a compaction copied: its key, where it was, and where it went.
struct MovedRow: Sendable {
    var key: UInt64
    var from: String
    var fromRow: UInt32
    var output: Int
    var row: UInt32
}

/// The key-index layer a compaction wrote for one attempt, and what it was written for: the
/// layers below it, its outputs (those its entries use), and its entries.
struct CompactionLayer: Sendable {
    var layer: PKIndexLayer
    var below: [String]
    var segments: [String]
    var entries: [UInt64: (output: Int, row: UInt32)]
    var written: ContinuousClock.Instant
}
