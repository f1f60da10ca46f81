// HiddenRows: which committed rows a writer's searches may return, once its pending writes hide
// the rows of the keys they rewrote or deleted — kept up to date as writes come, not recomputed.
import IndexCore
import SegmentFormat

/// Per segment of one version, the rows a search of this handle may return: the live rows,
/// minus the committed row of every key a pending write (or a commit in flight) rewrote or
/// deleted. Those keys' newest rows are pending, so the committed ones must not come back.
///
/// The rows are hidden in the bitmaps each segment search already takes, so a segment is asked
/// for `k` rows however many keys are pending (asking each for `k` plus one per pending key, as
/// before, made a search with 100 000 pending upserts fetch 100 000 candidates per segment).
/// Pending keys only grow until a commit takes them, so a search extends the bitmaps with the
/// keys touched since the last one; a new version or a new batch starts them over.
struct HiddenRows: Sendable {
    /// The version, batches and keys of each batch these bitmaps reflect.
    private let view: VersionView
    private let pending: PendingWrites.Identity
    private let flushing: PendingWrites.Identity?
    private var pendingSeen = 0
    private var flushingSeen = 0
    /// Per segment of `view`, the rows a search may return; nil when it may return every row.
    private(set) var allowed: [Bitmap?]

    private init(view: VersionView, pending: PendingWrites, flushing: PendingWrites?, live: [Bitmap?]) {
        self.view = view
        self.pending = pending.identity
        self.flushing = flushing?.identity
        allowed = live
    }

    /// The allowed rows of `view`'s segments with `pending` and `flushing`'s keys hidden,
    /// extended from `earlier` when it reflects the same version and batches (only the keys
    /// touched since are looked up), else computed anew from the live rows.
    ///
    /// - Parameters:
    ///   - live: the version's live rows (``VersionView/live()``).
    ///   - pk: the version's key index; nil when it has none (then nothing committed is hidden).
    static func update(_ earlier: HiddenRows?, view: VersionView, live: [Bitmap?], pk: PKIndex?,
                       pending: PendingWrites, flushing: PendingWrites?) -> HiddenRows {
        var rows: HiddenRows
        if let earlier, earlier.view === view, earlier.pending === pending.identity, earlier.flushing === flushing?.identity,
           earlier.pendingSeen <= pending.touchLog.count, earlier.flushingSeen <= (flushing?.touchLog.count ?? 0) {
            rows = earlier
        } else {
            rows = HiddenRows(view: view, pending: pending, flushing: flushing, live: live)
        }
        guard let pk else { return rows }
        let sizes = view.segments.map { Int($0.ref.rowCount) }
        func hide(_ keys: ArraySlice<UInt64>) {
            for key in keys {
                guard let loc = pk.entries[key], Int(loc.segment) < rows.allowed.count else { continue }
                let s = Int(loc.segment)
                if rows.allowed[s] == nil { rows.allowed[s] = Bitmap(count: sizes[s], allSet: true) }
                rows.allowed[s]!.remove(Int(loc.row))
            }
        }
        hide(pending.touchLog[rows.pendingSeen...])
        rows.pendingSeen = pending.touchLog.count
        if let flushing {
            hide(flushing.touchLog[rows.flushingSeen...])
            rows.flushingSeen = flushing.touchLog.count
        }
        return rows
    }

    /// Whether these bitmaps already reflect every key of `pending` and `flushing` on `view`.
    func isCurrent(view: VersionView, pending: PendingWrites, flushing: PendingWrites?) -> Bool {
        self.view === view && self.pending === pending.identity && self.flushing === flushing?.identity
            && pendingSeen == pending.touchLog.count && flushingSeen == (flushing?.touchLog.count ?? 0)
    }
}
