// Plans the remote GETs of one read: which missing pages share a request (with the gaps between
// them), and where a long run is split into parallel parts. Pure; no I/O.

/// Turns the missing pages of one read into ranged GETs, in pages.
enum FetchPlan {
    /// The GETs for `pages` (ascending, unique): consecutive pages form one run; runs separated
    /// by at most `gapPages` pages are merged (the gap rides along) unless a gap page is `busy`
    /// (already being fetched by another read); a run longer than `maxPages` is split into
    /// the fewest parts of at most `maxPages`, of nearly equal size.
    static func requests(_ pages: [UInt64], gapPages: UInt64, maxPages: UInt64,
                         busy: (UInt64) -> Bool) -> [Range<UInt64>] {
        var runs: [Range<UInt64>] = []
        for p in pages {
            if let last = runs.last, p >= last.upperBound, p - last.upperBound <= gapPages,
               !(last.upperBound..<p).contains(where: busy) {
                runs[runs.count - 1] = last.lowerBound..<p + 1
            } else {
                runs.append(p..<p + 1)
            }
        }
        return runs.flatMap { split($0, maxPages: max(1, maxPages)) }
    }

    /// `run` in the fewest parts of at most `maxPages` pages, the larger parts first.
    static func split(_ run: Range<UInt64>, maxPages: UInt64) -> [Range<UInt64>] {
        let n = UInt64(run.count)
        let parts = (n + maxPages - 1) / maxPages
        guard parts > 1 else { return [run] }
        var out: [Range<UInt64>] = []
        var lo = run.lowerBound
        for i in 0..<parts {
            let size = n / parts + (i < n % parts ? 1 : 0)
            out.append(lo..<lo + size)
            lo += size
        }
        return out
    }
}
