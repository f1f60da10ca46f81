// HiddenRows: which rows a writer's searches may return once newer writes hide older rows of the
// same keys (committed rows, and a commit in flight's) — kept up to date as writes come.
import IndexCore
import SegmentFormat

/// The rows a search of a writer may return, once newer writes hide older rows of their keys:
///
/// - per segment of one version, its live rows minus the committed row of every key written
///   since the last commit (pending, or in a commit in flight);
/// - of a commit in flight (`flushing`), its memtable's rows and its spilled segments' live rows
///   minus those of keys written since it began (pending);
/// - of the pending writes' spilled segments, their live rows (made again only when some went).
///
/// Hiding by row, in the bitmaps each search already takes, lets every segment and table be
/// asked for `k` rows however many keys are pending (asking for `k` plus one per pending key,
/// as before, made a search with 100 000 pending upserts fetch 100 000 candidates per segment).
/// Write logs only grow until a commit takes the batch, so a search extends the bitmaps with the
/// keys written since the last one; a new version or a new batch starts them over.
struct HiddenRows: Sendable {
    /// The version, batches and write-log lengths these bitmaps reflect.
    private let view: VersionView
    private let pending: PendingWrites.Identity
    private let flushing: PendingWrites.Identity?
    private var pendingSeen = 0
    private var flushingSeen = 0
    /// Per segment of `view`, the rows a search may return; nil when it may return every row.
    private(set) var committed: [Bitmap?]
    /// The rows of the commit in flight's memtable that newer writes hide (nil: none).
    private(set) var flushingTable: Bitmap?
    /// Per spilled segment of the commit in flight, the rows a search may return (nil: all).
    private(set) var flushingSpills: [Bitmap?]
    /// Per spilled segment of the pending writes, its live rows (nil: all), and the live-row
    /// counts they were made from: live rows only ever go, so equal counts mean equal rows.
    private(set) var pendingSpills: [Bitmap?] = []
    private var pendingSpillCounts: [Int] = []

    private init(view: VersionView, pending: PendingWrites, flushing: PendingWrites?, live: [Bitmap?]) {
        self.view = view
        self.pending = pending.identity
        self.flushing = flushing?.identity
        committed = live
        flushingSpills = flushing?.spilled.map(\.allowed) ?? []
    }

    /// The bitmaps for `view`, `pending` and `flushing`, extended from `earlier` when it
    /// reflects the same version and batches (only the keys written since are looked up), else
    /// computed anew.
    ///
    /// - Parameters:
    ///   - live: the version's live rows (``VersionView/live()``).
    ///   - pk: the version's key index; nil when it has none (nothing committed is hidden).
    static func update(_ earlier: HiddenRows?, view: VersionView, live: [Bitmap?], pk: PKIndex?,
                       pending: PendingWrites, flushing: PendingWrites?) -> HiddenRows {
        var rows: HiddenRows
        if let earlier, earlier.view === view, earlier.pending === pending.identity, earlier.flushing === flushing?.identity,
           earlier.pendingSeen <= pending.writeLog.count, earlier.flushingSeen <= (flushing?.writeLog.count ?? 0) {
            rows = earlier
        } else {
            rows = HiddenRows(view: view, pending: pending, flushing: flushing, live: live)
        }
        let sizes = view.segments.map { Int($0.ref.rowCount) }
        func hideCommitted(_ keys: ArraySlice<UInt64>) {
            guard let pk else { return }
            for key in keys {
                guard let loc = pk.entries[key], Int(loc.segment) < rows.committed.count else { continue }
                let s = Int(loc.segment)
                if rows.committed[s] == nil { rows.committed[s] = Bitmap(count: sizes[s], allSet: true) }
                rows.committed[s]!.remove(Int(loc.row))
            }
        }
        let counts = pending.spilled.map(\.liveRows.count)
        if counts != rows.pendingSpillCounts {
            rows.pendingSpills = pending.spilled.map(\.allowed)
            rows.pendingSpillCounts = counts
        }
        let newPending = pending.writeLog[rows.pendingSeen...]
        hideCommitted(newPending)
        rows.pendingSeen = pending.writeLog.count
        if let flushing {
            hideCommitted(flushing.writeLog[rows.flushingSeen...])
            rows.flushingSeen = flushing.writeLog.count
            // Keys written since the commit began hide its rows of them.
            let table = flushing.memtable
            for key in newPending {
                if let row = table.rowOf[key] {
                    if rows.flushingTable == nil { rows.flushingTable = Bitmap(count: table.count) }
                    rows.flushingTable!.insert(row)
                }
                for (i, spill) in flushing.spilled.enumerated() {
                    guard let row = spill.liveRows[key] else { continue }
                    if rows.flushingSpills[i] == nil { rows.flushingSpills[i] = Bitmap(count: Int(spill.ref.rowCount), allSet: true) }
                    rows.flushingSpills[i]!.remove(row)
                }
            }
        }
        return rows
    }

    /// Whether these bitmaps already reflect every write of `pending` and `flushing` on `view`,
    /// and the pending writes' spilled segments as they are (a spill lands after its writes).
    func isCurrent(view: VersionView, pending: PendingWrites, flushing: PendingWrites?) -> Bool {
        self.view === view && self.pending === pending.identity && self.flushing === flushing?.identity
            && pendingSeen == pending.writeLog.count && flushingSeen == (flushing?.writeLog.count ?? 0)
            && pendingSpillCounts.elementsEqual(pending.spilled.lazy.map(\.liveRows.count))
    }
}
