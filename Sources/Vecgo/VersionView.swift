// One committed version as a handle sees it: manifest, segment readers, key index and live rows.
import Foundation
import IndexCore
import SegmentFormat
import Stores
import Tiering

/// A version's key index in memory: its pk-index layers combined into one index over the
/// version's segments, and how big the layers are (the writer's rule for the next layer).
struct PKChain: Sendable {
    /// Every live key's segment (an ordinal of the manifest's segments) and row.
    var index: PKIndex
    /// Entries of the full layer.
    var fullEntries: Int
    /// Entries and tombstones of the deltas after it.
    var deltaEntries: Int
    /// The keys the deltas name (entries and tombstones): what a merged delta holds (see
    /// `Vecgo.writePKIndex`); nil when not known.
    var deltaKeys: Set<UInt64>?

    /// The keys `layers` name, entries and tombstones.
    static func keys(of layers: some Sequence<PKIndex.Layer>) -> Set<UInt64> {
        var keys = Set<UInt64>()
        for l in layers {
            keys.formUnion(l.index.entries.keys)
            keys.formUnion(l.index.tombstones)
        }
        return keys
    }
}

/// How a commit changed which rows are live, against the version it built on: that version's
/// segments come first in the new one, in the same order, and new segments follow.
struct LiveChanges: Sendable {
    /// Rows no longer live (the old locations of the keys the commit moved or removed).
    var died: [PKIndex.Location] = []
    /// The live rows of the new segments.
    var born: [PKIndex.Location] = []
}

/// One committed version as a handle sees it: the manifest, a reader per segment, and — read
/// once, in the background from the moment the view exists — the pk-index and from it which
/// rows of each segment are live (a row is live when the pk-index maps its key to it; rows
/// superseded by an upsert or removed by a delete are not).
final class VersionView: Sendable {
    let manifest: Manifest?
    let segments: [SegmentReader]
    /// The handle's budget for decoded segment parts, shared by all its views.
    let budget: DecodedBudget?
    /// Whether the pk-index is read as soon as the view exists even when no row is dead: a
    /// writer's views need it to rebase and to check conflicts later, when vacuum may have
    /// deleted it.
    let keepsPKIndex: Bool
    private let store: any BlobStore
    /// The pk-index and the live rows, each read once and shared; a failed read is retried by
    /// the next caller, so one transient error never poisons the view.
    private let pkSlot = Locked<Task<PKChain?, any Error>?>(nil)
    private let liveSlot = Locked<Task<[Bitmap?], any Error>?>(nil)
    private let prefetch: Task<Void, Never>

    /// What `previous` knew of its key index when this view was made from it: its layers and
    /// the index being read or held. Dropped once this view's own index exists.
    private let earlier: Locked<(layers: [PKIndexLayer], segments: [String], task: Task<PKChain?, any Error>)?>

    /// A view of `manifest`, reusing the readers (and their cached tails and graphs) of
    /// segments that `previous` already had, and its key index: when `manifest` has the same
    /// pk-index layers it is shared, when it adds layers only those are read. A writer that just
    /// built the version hands its key index in as `pk`, so nothing is read back, and what the
    /// commit changed as `changes`: the live rows follow from `previous`'s and those changes.
    init(_ manifest: Manifest?, store: any BlobStore, metric: Metric, previous: VersionView? = nil, budget: DecodedBudget? = nil,
         keepsPKIndex: Bool? = nil, pk: PKChain? = nil, changes: LiveChanges? = nil) {
        self.manifest = manifest
        self.store = store
        let budget = budget ?? previous?.budget
        self.budget = budget
        self.keepsPKIndex = keepsPKIndex ?? previous?.keepsPKIndex ?? false
        let known = Dictionary((previous?.segments ?? []).map { ($0.ref.name, $0) }, uniquingKeysWith: { a, _ in a })
        let segments = manifest?.segments.map {
            known[$0.name] ?? SegmentReader(ref: $0, store: store, metric: metric, budget: budget)
        } ?? []
        self.segments = segments
        // The decoded parts of segments this version no longer has are never used again by the
        // handle: drop them now rather than when the budget is full, so what a handle keeps
        // follows its current version (a search still running on `previous` decodes again).
        if let previous, let budget, manifest != nil {
            let current = Set(segments.map(\.ref.name))
            budget.evict(segments: Set(previous.segments.map(\.ref.name)).subtracting(current))
        }
        // Only writers hold their index (readers keep live-row bitmaps), so only theirs is reused.
        var before: (layers: [PKIndexLayer], segments: [String], task: Task<PKChain?, any Error>)?
        if let previous, let m = previous.manifest, let task = previous.pkSlot.withLock({ $0 }) {
            before = (m.pkIndexLayers, m.segments.map(\.name), task)
        }
        var sameLive: Task<[Bitmap?], any Error>?
        if let pk {
            pkSlot.withLock { $0 = Task { pk } }
            before = nil
        } else if let same = before, let m = manifest, same.layers == m.pkIndexLayers, same.segments == m.segments.map(\.name) {
            pkSlot.withLock { $0 = same.task }  // the same key index (a key reservation, a takeover)
            sameLive = previous?.liveSlot.withLock { $0 }
            before = nil
        }
        earlier = Locked(self.keepsPKIndex ? before : nil)
        // Footers and IVF centroids are read in parallel without holding up the open.
        prefetch = Task.detached(priority: .userInitiated) { [segments] in
            await withTaskGroup(of: Void.self) { group in
                for s in segments { group.addTask { _ = try? await s.tail() } }
            }
        }
        // The pk-index and live rows too, from the start (in the slot at once, so settle() sees it).
        if let sameLive {
            liveSlot.withLock { $0 = sameLive }
        } else if let changes, let previous, let m = manifest {
            // From the previous view's live rows and what the commit changed: no pass over the index.
            liveSlot.withLock {
                $0 = Task { [self] in
                    if let base = try? await previous.live(), let live = Self.liveRows(m, from: base, changes) { return live }
                    return try await self.computeLive()
                }
            }
        } else {
            liveSlot.withLock { $0 = Task { [self] in try await self.computeLive() } }
        }
        if self.keepsPKIndex { pkSlot.withLock { $0 = $0 ?? Task { [self] in try await self.loadPK() } } }
    }

    var version: UInt64 { manifest?.version ?? 0 }

    /// Waits for the background reads this view started (their failures are the queries' to
    /// report), so a closing handle leaves nothing running.
    func settle() async {
        await prefetch.value
        if let running = liveSlot.withLock({ $0 }) { _ = try? await running.value }
        if let running = pkSlot.withLock({ $0 }) { _ = try? await running.value }
    }

    /// The key index of this version, its layers combined (nil before the first commit). A
    /// failed read (perhaps a background one) is tried once more before the error is reported.
    func pk() async throws -> PKIndex? { try await pkChain()?.index }

    /// Like ``pk()``, with the sizes of the layers.
    func pkChain() async throws -> PKChain? {
        do { return try await sharedTask(pkSlot, loadPK).value } catch { return try await sharedTask(pkSlot, loadPK).value }
    }

    /// Per segment, its live rows, or nil when every row is live (retried once like ``pk()``).
    func live() async throws -> [Bitmap?] {
        let compute: @Sendable () async throws -> [Bitmap?] = { [self] in try await self.computeLive() }
        do { return try await sharedTask(liveSlot, compute).value } catch { return try await sharedTask(liveSlot, compute).value }
    }

    private var loadPK: @Sendable () async throws -> PKChain? {
        let manifest = self.manifest, store = self.store, earlier = self.earlier
        let writer = keepsPKIndex  // only a writer merges deltas, so only it needs their keys
        return {
            guard let m = manifest, !m.pkIndexObject.isEmpty else { return nil }
            let layers = m.pkIndexLayers, names = m.segments.map(\.name)
            // The previous view's index, when this chain only adds layers to its chain: read those.
            if let before = earlier.withLock({ $0 }), before.layers.count < layers.count,
               Array(layers.prefix(before.layers.count)) == before.layers,
               let known = try? await before.task.value {
                let added = try await Self.readLayers(Array(layers.dropFirst(before.layers.count)), store)
                let start = PKIndex(version: known.index.version, segments: before.segments, entries: known.index.entries)
                let index = try PKIndex.combine([(m.pkIndexBaseLayers[before.layers.count - 1].name, start)] + added,
                                                segments: names, version: m.version)
                earlier.withLock { $0 = nil }
                return PKChain(index: index, fullEntries: known.fullEntries,
                               deltaEntries: known.deltaEntries + added.reduce(0) { $0 + $1.index.entries.count + $1.index.tombstones.count },
                               deltaKeys: writer ? known.deltaKeys?.union(PKChain.keys(of: added)) : nil)
            }
            let read = try await Self.readLayers(layers, store)
            let full = read[0].index.entries.count
            let deltas = read.dropFirst().reduce(0) { $0 + $1.index.entries.count + $1.index.tombstones.count }
            let keys = writer ? PKChain.keys(of: read.dropFirst()) : nil
            earlier.withLock { $0 = nil }
            return PKChain(index: try PKIndex.combine(consume read, segments: names, version: m.version), fullEntries: full,
                           deltaEntries: deltas, deltaKeys: keys)
        }
    }

    /// Reads and decodes pk-index layers, all at once (their names are in the manifest).
    static func readLayers(_ layers: [PKIndexLayer], _ store: any BlobStore) async throws -> [PKIndex.Layer] {
        try await withThrowingTaskGroup(of: (Int, PKIndex).self) { group in
            for (i, l) in layers.enumerated() {
                group.addTask { (i, try await store.readChecked(l.name, ranges: [0..<l.size]) { try PKIndex.decode($0[0], object: l.name) }) }
            }
            var out = [PKIndex?](repeating: nil, count: layers.count)
            for try await (i, pk) in group { out[i] = pk }
            return zip(layers, out).map { ($0.name, $1!) }
        }
    }

    private func computeLive() async throws -> [Bitmap?] {
        guard let m = manifest else { return [] }
        // The manifest says no segment has a dead row: every row is live, no pk-index needed.
        if m.segments.allSatisfy({ $0.deadRows == 0 }) { return Array(repeating: nil, count: m.segments.count) }
        guard let pk = try await pk() else { return Array(repeating: nil, count: m.segments.count) }
        let live = try Self.liveRows(m, pk)
        // A reader needs only the bitmaps (a bit per row of segments with dead rows), not the
        // index (tens of bytes per row): let it go. A writer keeps it for its next commit.
        if !keepsPKIndex { pkSlot.withLock { $0 = nil } }
        return live
    }

    /// Whether the pk-index is held in memory now.
    var holdsPKIndex: Bool { pkSlot.withLock { $0 != nil } }

    /// The live rows of `m` from those of the version it was built on (`base`, its first
    /// segments) and the rows a commit killed and added; nil when they do not fit `m`.
    static func liveRows(_ m: Manifest, from base: [Bitmap?], _ changes: LiveChanges) -> [Bitmap?]? {
        guard base.count <= m.segments.count else { return nil }
        var live = base + [Bitmap?](repeating: nil, count: m.segments.count - base.count)
        func rows(_ s: Int) -> Int { Int(m.segments[s].rowCount) }
        for loc in changes.died {
            let s = Int(loc.segment)
            guard s < base.count, Int(loc.row) < rows(s) else { return nil }
            if live[s] == nil { live[s] = Bitmap(count: rows(s), allSet: true) }
            live[s]!.remove(Int(loc.row))
        }
        var born = [Int](repeating: 0, count: m.segments.count)
        for loc in changes.born {
            guard Int(loc.segment) >= base.count, Int(loc.segment) < m.segments.count, Int(loc.row) < rows(Int(loc.segment)) else { return nil }
            born[Int(loc.segment)] += 1
        }
        for s in base.count..<m.segments.count where born[s] < rows(s) { live[s] = Bitmap(count: rows(s)) }
        for loc in changes.born where live[Int(loc.segment)] != nil { live[Int(loc.segment)]!.insert(Int(loc.row)) }
        return live
    }

    /// A row is live when the pk-index maps its key to it.
    private static func liveRows(_ m: Manifest, _ pk: PKIndex) throws -> [Bitmap?] {
        var counts = [Int](repeating: 0, count: m.segments.count)
        for (key, loc) in pk.entries {
            guard Int(loc.segment) < m.segments.count, UInt64(loc.row) < m.segments[Int(loc.segment)].rowCount else {
                throw FormatError(.corrupted, object: m.pkIndexObject, offset: 0,
                                  "key \(key) points at row \(loc.row) of segment \(loc.segment), outside manifest version \(m.version)")
            }
            counts[Int(loc.segment)] += 1
        }
        var live = [Bitmap?](repeating: nil, count: m.segments.count)
        for (s, ref) in m.segments.enumerated() where UInt64(counts[s]) < ref.rowCount {
            live[s] = Bitmap(count: Int(ref.rowCount))
        }
        for loc in pk.entries.values where live[Int(loc.segment)] != nil {
            live[Int(loc.segment)]!.insert(Int(loc.row))
        }
        return live
    }
}
