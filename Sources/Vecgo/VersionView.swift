import Foundation
import IndexCore
import SegmentFormat
import Stores

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
    private let pkSlot = Locked<Task<PKIndex?, any Error>?>(nil)
    private let liveSlot = Locked<Task<[Bitmap?], any Error>?>(nil)
    private let prefetch: Task<Void, Never>

    /// A view of `manifest`, reusing the readers (and their cached tails and graphs) of
    /// segments that `previous` already had.
    init(_ manifest: Manifest?, store: any BlobStore, metric: Metric, previous: VersionView? = nil, budget: DecodedBudget? = nil,
         keepsPKIndex: Bool? = nil) {
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
        // Footers and IVF centroids are read in parallel without holding up the open.
        prefetch = Task.detached(priority: .userInitiated) { [segments] in
            await withTaskGroup(of: Void.self) { group in
                for s in segments { group.addTask { _ = try? await s.tail() } }
            }
        }
        // The pk-index and live rows too, from the start (in the slot at once, so settle() sees it).
        liveSlot.withLock { $0 = Task { [self] in try await self.computeLive() } }
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

    /// The pk-index of this version (nil before the first commit). A failed read (perhaps a
    /// background one) is tried once more before the error is reported.
    func pk() async throws -> PKIndex? {
        do { return try await sharedTask(pkSlot, loadPK).value } catch { return try await sharedTask(pkSlot, loadPK).value }
    }

    /// Per segment, its live rows, or nil when every row is live (retried once like ``pk()``).
    func live() async throws -> [Bitmap?] {
        let compute: @Sendable () async throws -> [Bitmap?] = { [self] in try await self.computeLive() }
        do { return try await sharedTask(liveSlot, compute).value } catch { return try await sharedTask(liveSlot, compute).value }
    }

    private var loadPK: @Sendable () async throws -> PKIndex? {
        let manifest = self.manifest, store = self.store
        return {
            guard let m = manifest, !m.pkIndexObject.isEmpty else { return nil }
            let bytes = try await store.read(m.pkIndexObject, range: 0..<m.pkIndexSize)
            let pk = try PKIndex.decode(bytes, object: m.pkIndexObject)
            guard pk.segments == m.segments.map(\.name) else {
                throw FormatError(.corrupted, object: m.pkIndexObject, offset: 0,
                                  "its segment list differs from manifest version \(m.version)'s")
            }
            return pk
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
