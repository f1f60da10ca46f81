// The swift-metrics series of a database handle (query latency, commits and their outcomes,
// refresh failures) and the log lines that go with them.
import Logging
import Metrics

/// The swift-metrics handles of one database handle, made when it opens (after the
/// application bootstrapped its backend, if it does; a no-op otherwise). The cache stack's
/// series are ``Tiering/TierStats``'.
///
/// - `vecgo_query_duration_seconds` (timer): every ``Vecgo/search(_:k:filter:include:options:)``.
/// - `vecgo_commits_total`: commits that published a version.
/// - `vecgo_commit_conflicts_total`, `vecgo_commit_timeouts_total`, `vecgo_commit_failures_total`:
///   commits that failed with `.conflict`, with `.timedOut`, or otherwise.
/// - `vecgo_commit_races_lost_total`: manifest puts lost to another writer and retried.
/// - `vecgo_refresh_failures_total`: background refreshes (``OpenOption/refreshInterval(_:)``) that failed.
struct VecgoMetrics: Sendable {
    let queryDuration = Metrics.Timer(label: "vecgo_query_duration_seconds")
    let commits = Counter(label: "vecgo_commits_total")
    let conflicts = Counter(label: "vecgo_commit_conflicts_total")
    let timeouts = Counter(label: "vecgo_commit_timeouts_total")
    let failures = Counter(label: "vecgo_commit_failures_total")
    let racesLost = Counter(label: "vecgo_commit_races_lost_total")
    let refreshFailures = Counter(label: "vecgo_refresh_failures_total")

    /// Times a search that started at `started`.
    func queryEnded(started: ContinuousClock.Instant) {
        let (secs, atto) = (ContinuousClock.now - started).components
        queryDuration.recordNanoseconds(secs * 1_000_000_000 + atto / 1_000_000_000)
    }

    /// Counts and logs a failed background refresh.
    func refreshFailed(_ error: any Error, logger: Logger) {
        refreshFailures.increment()
        let e = VecgoError.wrap(error, "refreshing")
        logger.warning("background refresh failed; still serving the version seen before",
                       metadata: ["code": "\(e.code)", "error": "\(e.message)"])
    }

    /// Counts the manifest puts a commit lost to other writers (each one retried).
    func lostRaces(_ n: Int, label: String, logger: Logger) {
        guard n > 0 else { return }
        racesLost.increment(by: n)
        logger.debug("commit retried after losing races to other writers", metadata: ["label": "\(label)", "racesLost": "\(n)"])
    }

    /// Counts and logs how a commit ended.
    func commitEnded(_ result: Result<UInt64, any Error>, rows: Int, logger: Logger) {
        switch result {
        case .success(let version):
            commits.increment()
            logger.info("committed", metadata: ["version": "\(version)", "rows": "\(rows)"])
        case .failure(let error):
            let e = VecgoError.wrap(error, "committing")
            switch e.code {
            case .conflict: conflicts.increment()
            case .timedOut: timeouts.increment()
            default: failures.increment()
            }
            logger.warning("commit failed; the writes stay pending",
                           metadata: ["code": "\(e.code)", "rows": "\(rows)", "error": "\(e.message)"])
        }
    }
}

