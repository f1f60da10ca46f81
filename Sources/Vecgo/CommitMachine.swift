// The commit protocol as a state machine: a value type that takes what the store answered
// (events) and says what to do next (actions). No I/O; time and randomness are injected, so
// tests drive every path without a store. `Vecgo.commitManifest` is the driver.
import Foundation
import Stores

/// The commit loop of one manifest commit.
///
/// The protocol: build the next manifest on a view confirmed to be the newest version within
/// `maxViewAge` (vacuum frees version numbers only after a longer grace period, so the number
/// after such a view was never freed), and create it only if absent. Then:
/// - the put answered: committed;
/// - the put failed or said "exists": it may have landed (a lost answer, a retried create whose
///   first try landed), so read that version back; our own manifest there means committed;
///   another writer's means the race was lost: re-read the newest version and build again on
///   it at once (losing a race on disjoint keys is no error and costs no wait); nothing there
///   means the put did not land: put again;
/// - a build that took longer than `maxViewAge` confirms the view again and rebuilds when a
///   newer version appeared;
/// - a newer writer epoch fences this writer;
/// - only a store that throttles (``StoreError/Code-swift.struct/throttled``) makes it back
///   off, with full jitter drawn from the injected random source.
///
/// The whole commit is bounded by a time budget and by an attempt count; running out of either
/// is ``VecgoError/Code-swift.struct/timedOut``, never `.conflict` (that one is for a key two
/// writers changed, found by the build).
struct CommitMachine {
    /// The limits a commit runs under.
    struct Policy: Sendable {
        /// The longest the whole commit may take before it gives up (`.commitTimeout`).
        var timeBudget: Duration
        /// The most manifest puts (and builds) a commit makes (`.commitAttempts`).
        var maxAttempts: Int
        /// The oldest a view may be confirmed before a commit builds on it (`.maxCommitObjectAge`).
        var maxViewAge: Duration
        /// Reads of a version whose put is in doubt before the commit reports it cannot tell.
        var readBackAttempts = 4
        /// The wait before the second read-back, doubling for each further one.
        var readBackDelay: Duration = .milliseconds(250)
        /// The first throttling backoff's ceiling, doubling per consecutive throttle up to `maxBackoff`.
        var backoffBase: Duration = .milliseconds(50)
        var maxBackoff: Duration = .seconds(2)
        /// Fairness: the ceiling of a random pause before the first build, for a writer that is
        /// winning back-to-back while other writers are about (zero: no pause). A writer that
        /// lost a race needs a few more round trips (read back, re-read, build) than the
        /// winner's next commit; without the pause the winner, already on the newest version,
        /// wins every time and the others starve.
        var yieldCeiling: Duration = .zero
    }

    /// What the driver does next.
    enum Action: Equatable {
        /// Find the newest version from the view (probing forward), move the view there, then
        /// report ``CommitMachine/viewConfirmed(version:writerEpoch:askedAt:)``.
        case confirmView
        /// Build the next manifest on the current view, then report ``built()``.
        case build
        /// Create the built manifest if absent, then report ``putAnswered(at:)`` or ``putFailed(_:)``.
        case put
        /// Read the version the put targeted, then report ``readBack(_:)``.
        case readBack
        /// Find the newest version from `after` (which exists), move the view there, then
        /// report ``latestRead(version:writerEpoch:askedAt:)``.
        case readLatest(after: UInt64)
        /// Wait this long (cancellable), then report ``slept()`` (or ``cancelled()``).
        case sleep(Duration)
        /// Committed: the built manifest is the new version.
        case done
        /// Give up with this error; nothing was published by this commit.
        case fail(VecgoError)

        static func == (a: Action, b: Action) -> Bool {
            switch (a, b) {
            case (.confirmView, .confirmView), (.build, .build), (.put, .put), (.readBack, .readBack), (.done, .done): true
            case (.readLatest(let x), .readLatest(let y)): x == y
            case (.sleep(let x), .sleep(let y)): x == y
            case (.fail(let x), .fail(let y)): x.code == y.code && x.message == y.message
            default: false
            }
        }
    }

    /// What a read-back of the put's version found.
    enum ReadBack: Equatable {
        /// This commit's own manifest: the put landed.
        case ours
        /// Another writer's manifest at that version: the race was lost.
        case other(version: UInt64)
        /// No manifest at that version: the put did not land.
        case missing
    }

    private enum Phase: Equatable {
        case idle, confirmingBeforeBuild, building, confirmingAfterBuild(base: UInt64), putting, readingBack, readingLatest, finished
    }

    let label: String
    let policy: Policy
    /// This writer's epoch: a view with a higher one fences it.
    let epoch: UInt64
    private let now: () -> ContinuousClock.Instant
    private var random: any RandomNumberGenerator

    /// The version of the view the commit would build on, and its writer epoch.
    private(set) var viewVersion: UInt64
    private var viewEpoch: UInt64
    /// When the view was last known to be the newest version; the driver keeps it.
    private(set) var viewConfirmedAt: ContinuousClock.Instant
    /// Manifest puts (and builds) made so far.
    private(set) var attempts = 0
    /// Races lost to other writers so far.
    private(set) var racesLost = 0
    private var phase = Phase.idle
    private let deadline: ContinuousClock.Instant
    /// The version the built manifest takes (its base's + 1).
    private var builtVersion: UInt64 = 0
    /// The error of the last failed put, while its outcome is unknown.
    private var putError: StoreError?
    /// The error of a put of the built manifest that read back as missing (it is put again).
    private var triedPut: StoreError?
    private var readBackFailures = 0
    /// The version a lost race found, from which the newest is looked for.
    private var latestFrom: UInt64 = 0
    private var throttles = 0
    /// When the last put was issued.
    private var putAt: ContinuousClock.Instant
    /// What to do after a `.sleep`.
    private var afterSleep: Resume?

    private enum Resume { case readBack, readLatest, confirm, attempt, put }

    /// - Parameters:
    ///   - now: the clock (tests inject a manual one).
    ///   - random: where backoff jitter comes from.
    init(label: String, policy: Policy, epoch: UInt64, viewVersion: UInt64, viewEpoch: UInt64,
         viewConfirmedAt: ContinuousClock.Instant, now: @escaping () -> ContinuousClock.Instant,
         random: any RandomNumberGenerator) {
        self.label = label
        self.policy = policy
        self.epoch = epoch
        self.viewVersion = viewVersion
        self.viewEpoch = viewEpoch
        self.viewConfirmedAt = viewConfirmedAt
        self.now = now
        self.random = random
        self.deadline = now() + policy.timeBudget
        self.putAt = viewConfirmedAt
    }

    private var viewIsStale: Bool { now() - viewConfirmedAt > policy.maxViewAge }

    // MARK: events

    /// The first action.
    mutating func start() -> Action {
        guard policy.yieldCeiling > .zero else { return nextAttempt() }
        afterSleep = .attempt
        return .sleep(jitter(upTo: policy.yieldCeiling))
    }

    /// The view was moved to the newest version (`confirmView`), known newest as of `askedAt`.
    mutating func viewConfirmed(version: UInt64, writerEpoch: UInt64, askedAt: ContinuousClock.Instant) -> Action {
        noteView(version: version, writerEpoch: writerEpoch, askedAt: askedAt)
        throttles = 0
        switch phase {
        case .confirmingAfterBuild(let base) where version == base:
            return putNow()  // nothing newer: the slow build still stands
        case .confirmingAfterBuild where triedPut != nil:
            // A put of this manifest failed and read back as missing, yet a newer version is
            // there now: the put may have landed late. Learn which before building again.
            putError = triedPut
            readBackFailures = 0
            phase = .readingBack
            return .readBack
        default:
            return buildNow()  // (before a build, or a newer version appeared while building)
        }
    }

    /// The manifest was built on the view.
    mutating func built() -> Action {
        throttles = 0
        builtVersion = viewVersion + 1
        if viewIsStale {  // the build took long: a newer version may exist, or this one been vacuumed
            phase = .confirmingAfterBuild(base: viewVersion)
            return .confirmView
        }
        return putNow()
    }

    /// The put answered: the manifest was created. Nothing after it existed when it was
    /// issued, so the new version is confirmed as of then.
    mutating func putAnswered() -> Action {
        committed()
    }

    /// The put failed; it may have landed all the same: read the version back.
    mutating func putFailed(_ error: StoreError) -> Action {
        putError = error
        readBackFailures = 0
        phase = .readingBack
        return .readBack
    }

    /// What the read-back found.
    mutating func readBack(_ found: ReadBack) -> Action {
        guard let e = putError else { return fail(VecgoError(.storage, "\(label): internal error: a read-back with no put in doubt")) }
        switch found {
        case .ours:
            putError = nil
            return committed()
        case .other(let version):
            putError = nil
            racesLost += 1
            phase = .readingLatest
            latestFrom = version
            return check() ?? .readLatest(after: version)  // at once: losing a race is no reason to wait
        case .missing:
            guard e.code != .alreadyExists else {  // "exists" but not readable yet: read again
                return readBackFailed(StoreError(.notFound, "version \(builtVersion) answered 'exists' but reads as missing"))
            }
            // It did not land: put again (a put that lands late makes the next one answer
            // "exists", and the read-back then finds this very manifest).
            putError = nil
            guard viewVersion < builtVersion else {  // newer versions exist, this one not: never fill the gap
                return fail(VecgoError(.storage, "\(label): version \(builtVersion) is missing while version \(viewVersion) exists (vacuumed?); cannot tell whether it was this commit (\(e))", underlying: e))
            }
            triedPut = e
            guard Self.mayRetry(e), attempts < policy.maxAttempts else { return fail(VecgoError.wrap(e, label)) }
            return e.code == .throttled ? backOff(then: .put) : retryPut()
        }
    }

    /// Reading the version back failed: read again after a pause, a few times.
    mutating func readBackFailed(_ error: any Error) -> Action {
        readBackFailures += 1
        guard readBackFailures < policy.readBackAttempts else {
            return fail(VecgoError(.storage, "\(label): could not learn whether version \(builtVersion) is this commit (\(putError.map { "\($0)" } ?? "?")); reading it failed: \(error)",
                                   underlying: putError))
        }
        afterSleep = .readBack
        return .sleep(policy.readBackDelay * (1 << min(readBackFailures - 1, 20)))
    }

    /// The newest version was read after a lost race, known newest as of `askedAt`.
    mutating func latestRead(version: UInt64, writerEpoch: UInt64, askedAt: ContinuousClock.Instant) -> Action {
        noteView(version: version, writerEpoch: writerEpoch, askedAt: askedAt)
        throttles = 0
        return nextAttempt()
    }

    /// A step other than the put failed (finding the newest version, building): a throttled
    /// store is waited for and the step repeated; anything else ends the commit.
    mutating func stepFailed(_ error: any Error) -> Action {
        guard Self.isThrottled(error) else { return fail(VecgoError.wrap(error, label)) }
        if let stop = check() { return stop }
        let again: Resume = switch phase {
        case .readingLatest: .readLatest
        case .confirmingBeforeBuild, .confirmingAfterBuild: .confirm
        default: .attempt
        }
        return backOff(then: again)
    }

    /// The pause asked for is over.
    mutating func slept() -> Action {
        let next = afterSleep
        afterSleep = nil
        if next == .readBack { return .readBack }  // a put in doubt is resolved whatever the budget
        if let stop = check() { return stop }
        switch next {
        case .readLatest: return .readLatest(after: max(latestFrom, viewVersion))
        case .confirm: return .confirmView
        case .put: return retryPut()
        case .attempt, .readBack, nil: return nextAttempt()
        }
    }

    /// The task was cancelled during a pause.
    mutating func cancelled() -> Action {
        if let e = putError {
            return fail(VecgoError(.storage, "\(label): cancelled before learning whether version \(builtVersion) is this commit (\(e))", underlying: e))
        }
        return fail(VecgoError(.cancelled, "\(label): cancelled; nothing was published, the pending writes are kept"))
    }

    // MARK: steps

    private mutating func noteView(version: UInt64, writerEpoch: UInt64, askedAt: ContinuousClock.Instant) {
        if version >= viewVersion {
            viewVersion = version
            viewEpoch = writerEpoch
        }
        if askedAt > viewConfirmedAt { viewConfirmedAt = askedAt }
    }

    /// Starts a new attempt: confirms a stale view first, then builds.
    private mutating func nextAttempt() -> Action {
        if let stop = check() { return stop }
        if viewIsStale {
            phase = .confirmingBeforeBuild
            return .confirmView
        }
        return buildNow()
    }

    private mutating func buildNow() -> Action {
        if viewEpoch > epoch {
            return fail(VecgoError(.fenced, "writer epoch \(viewEpoch) (version \(viewVersion)) took over from this writer's epoch \(epoch); open a new writer"))
        }
        if attempts >= policy.maxAttempts { return outOfAttempts() }
        if let stop = check() { return stop }
        attempts += 1
        triedPut = nil
        phase = .building
        return .build
    }

    private mutating func putNow() -> Action {
        phase = .putting
        putAt = now()
        return .put
    }

    /// Puts the built manifest again (it did not land): one more attempt, on a view still fresh.
    private mutating func retryPut() -> Action {
        if attempts >= policy.maxAttempts { return outOfAttempts() }
        if let stop = check() { return stop }
        attempts += 1
        if viewIsStale {  // the number after a stale view may have been freed by vacuum
            phase = .confirmingAfterBuild(base: builtVersion - 1)
            return .confirmView
        }
        return putNow()
    }

    private mutating func committed() -> Action {
        noteView(version: builtVersion, writerEpoch: viewEpoch, askedAt: putAt)
        phase = .finished
        return .done
    }

    /// The end of the time budget, checked where no put is in doubt.
    private mutating func check() -> Action? {
        guard now() >= deadline else { return nil }
        return fail(VecgoError(.timedOut, "\(label): not committed within \(policy.timeBudget) (.commitTimeout; \(attempts) attempts, \(racesLost) races lost to other writers); nothing was published, the pending writes are kept: retry later or raise the timeout"))
    }

    private mutating func outOfAttempts() -> Action {
        fail(VecgoError(.timedOut, "\(label): not committed in \(attempts) attempts (.commitAttempts; \(racesLost) races lost to other writers); nothing was published, the pending writes are kept: retry later or raise the limit"))
    }

    private mutating func backOff(then next: Resume) -> Action {
        throttles += 1
        let ceiling = min(policy.maxBackoff, policy.backoffBase * (1 << min(throttles - 1, 20)))
        afterSleep = next
        return .sleep(jitter(upTo: ceiling))  // full jitter
    }

    /// A random pause in `0...ceiling` (at most what is left of the budget), from the injected source.
    private mutating func jitter(upTo ceiling: Duration) -> Duration {
        let nanos = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        let pause = Duration.nanoseconds(Int64(random.next() % UInt64(max(nanos, 0) + 1)))
        return max(.zero, min(pause, deadline - now()))
    }

    private mutating func fail(_ error: VecgoError) -> Action {
        phase = .finished
        return .fail(error)
    }

    /// Whether a put that failed with `error` and did not land may be tried again.
    static func mayRetry(_ error: StoreError) -> Bool {
        [.network, .throttled, .conflict, .invalidResponse].contains(error.code)
    }

    /// Whether `error` (or the store error under it) says the store is throttling.
    static func isThrottled(_ error: any Error) -> Bool {
        switch error {
        case let e as StoreError: e.code == .throttled
        case let e as VecgoError: e.underlying.map(isThrottled) ?? false
        default: false
        }
    }
}
