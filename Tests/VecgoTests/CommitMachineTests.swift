// The commit protocol's state machine driven through every path without a store: a manual
// clock and a seeded random source make each run the same.
import Foundation
import Stores
import Testing
@testable import Vecgo
import _VecgoTestSupport

@Suite struct CommitMachineTests {
    /// A clock that moves only when told.
    final class ManualClock: Sendable {
        let instant = Locked(ContinuousClock.now)
        func now() -> ContinuousClock.Instant { instant.withLock { $0 } }
        func advance(_ d: Duration) { instant.withLock { $0 += d } }
    }

    static let maxViewAge = Duration.seconds(600)

    /// A machine on view `version` (epoch 1), confirmed now, with a budget of an hour.
    static func machine(_ clock: ManualClock, version: UInt64 = 5, viewEpoch: UInt64 = 1, epoch: UInt64 = 1,
                        confirmedAgo: Duration = .zero, attempts: Int = 1_000_000, yield: Duration = .zero,
                        budget: Duration = .seconds(3600), seed: UInt64 = 42) -> CommitMachine {
        var policy = CommitMachine.Policy(timeBudget: budget, maxAttempts: attempts, maxViewAge: maxViewAge)
        policy.yieldCeiling = yield
        return CommitMachine(label: "committing", policy: policy, epoch: epoch, viewVersion: version, viewEpoch: viewEpoch,
                             viewConfirmedAt: clock.now() - confirmedAgo, now: { clock.now() }, random: SeededRNG(seed: seed))
    }

    static let lost = StoreError(.network, "the answer was lost")
    static let exists = StoreError(.alreadyExists, "412")

    func code(_ a: CommitMachine.Action) -> VecgoError.Code? {
        if case .fail(let e) = a { return e.code }
        return nil
    }

    @Test func anAnsweredPutIsDone() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        #expect(m.start() == .build)
        #expect(m.built() == .put)
        #expect(m.putAnswered() == .done)
        #expect(m.viewVersion == 6)
        #expect(m.attempts == 1)
    }

    @Test func aLostAnswerWhoseVersionReadsBackAsOursIsDone() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        #expect(m.putFailed(Self.lost) == .readBack)
        #expect(m.readBack(.ours) == .done)
        #expect(m.viewVersion == 6)
        // A retried create whose first try landed answers "exists": the same read-back decides.
        var n = Self.machine(clock)
        _ = n.start()
        _ = n.built()
        #expect(n.putFailed(Self.exists) == .readBack)
        #expect(n.readBack(.ours) == .done)
    }

    @Test func aLostRaceReReadsTheNewestAtOnceAndBuildsOnIt() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        #expect(m.putFailed(Self.exists) == .readBack)
        #expect(m.readBack(.other(version: 6)) == .readLatest(after: 6), "no pause after a lost race")
        #expect(m.latestRead(version: 7, writerEpoch: 1, askedAt: clock.now()) == .build)
        #expect(m.built() == .put)
        #expect(m.putAnswered() == .done)
        #expect(m.viewVersion == 8)
        #expect(m.racesLost == 1)
        // A lost answer that turns out to be another writer's version is a lost race too.
        var n = Self.machine(clock)
        _ = n.start()
        _ = n.built()
        _ = n.putFailed(Self.lost)
        #expect(n.readBack(.other(version: 6)) == .readLatest(after: 6))
    }

    @Test func aPutThatDidNotLandIsPutAgain() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        #expect(m.putFailed(Self.lost) == .readBack)
        #expect(m.readBack(.missing) == .put, "a network failure is retried at once")
        #expect(m.putAnswered() == .done)
        #expect(m.attempts == 2)
        // A refused put (no permission) that did not land ends the commit with the store's error.
        var n = Self.machine(clock)
        _ = n.start()
        _ = n.built()
        _ = n.putFailed(StoreError(.accessDenied, "denied"))
        #expect(code(n.readBack(.missing)) == .permissionDenied)
        // With one attempt allowed, the store's error is reported.
        var one = Self.machine(clock, attempts: 1)
        _ = one.start()
        _ = one.built()
        _ = one.putFailed(Self.lost)
        #expect(code(one.readBack(.missing)) == .unavailable)
    }

    @Test func aRePutOnAStaleViewChecksForALateLanding() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        _ = m.putFailed(Self.lost)
        clock.advance(Self.maxViewAge + .seconds(1))
        #expect(m.readBack(.missing) == .confirmView, "the number after a stale view may have been vacuumed")
        // A version at or past ours appeared: the put may have landed late; never build on it blindly.
        #expect(m.viewConfirmed(version: 6, writerEpoch: 1, askedAt: clock.now()) == .readBack)
        #expect(m.readBack(.ours) == .done)
    }

    @Test func aReadBackThatKeepsFailingIsReportedNotGuessed() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        _ = m.putFailed(Self.lost)
        #expect(m.readBackFailed(Self.lost) == .sleep(.milliseconds(250)))
        #expect(m.slept() == .readBack)
        #expect(m.readBackFailed(Self.lost) == .sleep(.milliseconds(500)))
        #expect(m.slept() == .readBack)
        #expect(m.readBackFailed(Self.lost) == .sleep(.milliseconds(1000)))
        #expect(m.slept() == .readBack)
        let end = m.readBackFailed(Self.lost)
        #expect(code(end) == .storage)
        if case .fail(let e) = end { #expect(e.message.contains("could not learn whether version 6")) }
    }

    /// The "vacuumed version number" fix: an idle writer's view is confirmed again before it
    /// builds, so it never re-creates a version number vacuum freed.
    @Test func aStaleViewIsConfirmedBeforeBuilding() {
        let clock = ManualClock()
        var m = Self.machine(clock, confirmedAgo: Self.maxViewAge + .seconds(1))
        #expect(m.start() == .confirmView)
        #expect(m.viewConfirmed(version: 9, writerEpoch: 1, askedAt: clock.now()) == .build)
        #expect(m.built() == .put)
        #expect(m.putAnswered() == .done)
        #expect(m.viewVersion == 10)
    }

    /// The "stale view after a slow build" fix: a build that took longer than the view may be
    /// trusted confirms it again, and builds again when something newer appeared.
    @Test func aSlowBuildConfirmsTheViewAndRebuildsWhenItMoved() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        clock.advance(Self.maxViewAge + .seconds(1))
        #expect(m.built() == .confirmView)
        #expect(m.viewConfirmed(version: 7, writerEpoch: 1, askedAt: clock.now()) == .build)
        #expect(m.built() == .put)
        #expect(m.putAnswered() == .done)
        #expect(m.viewVersion == 8)
        // Nothing newer: the slow build stands.
        var n = Self.machine(clock)
        _ = n.start()
        clock.advance(Self.maxViewAge + .seconds(1))
        #expect(n.built() == .confirmView)
        #expect(n.viewConfirmed(version: 5, writerEpoch: 1, askedAt: clock.now()) == .put)
        #expect(n.attempts == 1)
    }

    @Test func aNewerWriterEpochFences() {
        let clock = ManualClock()
        var m = Self.machine(clock, viewEpoch: 3, epoch: 2)
        #expect(code(m.start()) == .fenced)
        // Met after a lost race, too.
        var n = Self.machine(clock, epoch: 1)
        _ = n.start()
        _ = n.built()
        _ = n.putFailed(Self.exists)
        _ = n.readBack(.other(version: 6))
        #expect(code(n.latestRead(version: 6, writerEpoch: 2, askedAt: clock.now())) == .fenced)
    }

    @Test func aThrottledStoreIsWaitedForWithJitterFromTheInjectedSource() {
        let clock = ManualClock()
        var m = Self.machine(clock, seed: 7)
        _ = m.start()
        let throttled = StoreError(.throttled, "SlowDown")
        var replica = SeededRNG(seed: 7)  // the same draws as the machine's source
        let first = m.stepFailed(VecgoError.wrap(throttled, "building"))
        #expect(first == .sleep(.nanoseconds(Int64(replica.next() % 50_000_001))))
        #expect(m.slept() == .build)
        let second = m.stepFailed(throttled)
        #expect(second == .sleep(.nanoseconds(Int64(replica.next() % 100_000_001))), "the ceiling doubles")
        #expect(m.slept() == .build)
        // A put answered with throttling that did not land is put again after a pause.
        _ = m.built()
        _ = m.putFailed(throttled)
        guard case .sleep = m.readBack(.missing) else { Issue.record("no pause after throttling"); return }
        #expect(m.slept() == .put)
        // A failed re-read after a lost race is repeated after a pause, not given up.
        var n = Self.machine(clock)
        _ = n.start()
        _ = n.built()
        _ = n.putFailed(Self.exists)
        _ = n.readBack(.other(version: 6))
        guard case .sleep = n.stepFailed(throttled) else { Issue.record("no pause after throttling"); return }
        #expect(n.slept() == .readLatest(after: 6))
        // Anything other than throttling ends the commit.
        #expect(code(n.stepFailed(StoreError(.accessDenied, "denied"))) == .permissionDenied)
    }

    @Test func runningOutOfTheTimeBudgetIsTimedOutNotConflict() {
        let clock = ManualClock()
        var m = Self.machine(clock, budget: .seconds(120))
        _ = m.start()
        _ = m.built()
        _ = m.putFailed(Self.exists)
        clock.advance(.seconds(121))
        let end = m.readBack(.other(version: 6))
        #expect(code(end) == .timedOut)
        if case .fail(let e) = end { #expect(e.message.contains(".commitTimeout")) }
        // The attempt cap is a .timedOut too.
        var n = Self.machine(clock, attempts: 1)
        _ = n.start()
        _ = n.built()
        _ = n.putFailed(Self.exists)
        _ = n.readBack(.other(version: 6))
        #expect(code(n.latestRead(version: 6, writerEpoch: 1, askedAt: clock.now())) == .timedOut)
    }

    @Test func aKeyAnotherWriterChangedIsAConflict() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.built()
        _ = m.putFailed(Self.exists)
        _ = m.readBack(.other(version: 6))
        #expect(m.latestRead(version: 6, writerEpoch: 1, askedAt: clock.now()) == .build)
        // The build found a key of this batch changed by the winner.
        #expect(code(m.stepFailed(VecgoError(.conflict, "key 7 was changed by another writer"))) == .conflict)
    }

    @Test func cancellationDuringAPauseEndsTheCommit() {
        let clock = ManualClock()
        var m = Self.machine(clock)
        _ = m.start()
        _ = m.stepFailed(StoreError(.throttled, "SlowDown"))
        #expect(code(m.cancelled()) == .cancelled)
    }

    @Test func aWriterWinningBackToBackPausesBeforeBuilding() {
        let clock = ManualClock()
        var m = Self.machine(clock, yield: .milliseconds(40), seed: 3)
        var replica = SeededRNG(seed: 3)
        #expect(m.start() == .sleep(.nanoseconds(Int64(replica.next() % 40_000_001))))
        #expect(m.slept() == .build)
    }
}

/// A caller tells "retry later" from "fix the credentials" from "fix the call" by the code alone.
@Suite struct ErrorCodeTests {
    @Test func storeErrorsMapToCodesACallerCanActOn() {
        let expected: [(StoreError.Code, VecgoError.Code)] = [
            (.network, .unavailable), (.throttled, .unavailable), (.accessDenied, .permissionDenied),
            (.invalidArgument, .invalidArgument), (.notFound, .notFound), (.alreadyExists, .conflict),
            (.conflict, .conflict), (.cancelled, .cancelled), (.invalidResponse, .storage), (.io, .storage),
        ]
        for (store, vecgo) in expected {
            let e = VecgoError.wrap(StoreError(store, "it failed"), "reading x")
            #expect(e.code == vecgo, "StoreError.\(store) became \(e.code)")
            #expect(e.underlying is StoreError)
        }
    }
}

/// A writer that lost a race is as few round trips from its next put as the winner: the
/// read-back's manifest is the base of the next attempt (one probe says it is the newest), not
/// probed for and read again (issue 15, part 3: losers needed ~5 sequential requests to the
/// winner's ~3 and starved).
@Suite struct LostRaceCostTests {
    @Test func aLostRaceCostsOneReadBackAndOneProbe() async throws {
        let memory = MemoryBlobStore()
        let setup = try await Vecgo.open(.remote(memory), .create(dimension: 2, metric: .l2))
        try await setup.upsert(id: 1, [1, 1])
        try await setup.close()
        let manifestRequests = Locked<[String]>([])
        let counting = InterceptingStore(memory, onRead: { name in
            if name.hasPrefix("MANIFEST-") { manifestRequests.withLock { $0.append("read \(name)") } }
        }, onWrite: { name, _ in
            if name.hasPrefix("MANIFEST-") { manifestRequests.withLock { $0.append("put \(name)") } }
        }, onSize: { name in
            if name.hasPrefix("MANIFEST-") { manifestRequests.withLock { $0.append("size \(name)") } }
        })
        let loser = try await Vecgo.open(.remote(counting))  // on version 1
        let winner = try await Vecgo.open(.remote(memory))
        try await winner.upsert(id: 2, [2, 2])
        try await winner.commit()  // version 2
        try await loser.upsert(id: 3, [3, 3])
        manifestRequests.withLock { $0 = [] }
        let version = try await loser.commit()
        #expect(version == 3)
        #expect(manifestRequests.withLock { $0 } == [
            "put MANIFEST-00000000000000000002.bin",   // lost
            "read MANIFEST-00000000000000000002.bin",  // the read-back: another writer's
            "size MANIFEST-00000000000000000003.bin",  // nothing newer
            "put MANIFEST-00000000000000000003.bin",
        ])
        try await winner.close()
        try await loser.close()
        let reader = try await Vecgo.open(.remote(memory), .readOnly)
        #expect(Set(try await reader.search([0, 0], k: 10).map(\.id)) == [1, 2, 3])
    }
}
