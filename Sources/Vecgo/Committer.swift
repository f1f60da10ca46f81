// The committer: the next manifest built on the newest version and created if absent (the
// actions of CommitMachine), pk-index layers, fairness between writers, rebasing a batch.
import IndexCore
import SegmentFormat
import Stores
import Tiering
import Foundation
import Logging

extension Vecgo {
    /// The manifest of `base` to build the next one from (a fresh one for an empty database).
    nonisolated func template(_ base: VersionView) throws -> Manifest {
        base.manifest ?? Manifest(version: 0, parentVersion: 0, commitTimeMicros: 0, writerEpoch: 0, writerID: "",
                                  dimension: dimension, metric: metric.rawValue, nextID: 1, pkIndexObject: "",
                                  pkIndexSize: 0, segments: [])
    }

    /// Creates the next manifest after the newest version: `make` derives its content from the
    /// version it builds on; the version number, parent, time, writer and epoch are set here.
    /// When another writer created that version first, the newest version is re-read and
    /// `make` asked again at once. Nothing is ever overwritten: the manifest is created only if
    /// absent. The protocol's decisions are ``CommitMachine``'s; this performs its actions.
    ///
    /// - Throws: ``VecgoError`` `.fenced` when a newer exclusive writer took over, `.conflict`
    ///   when `make` finds one, `.timedOut` when `.commitTimeout` or `.commitAttempts` run out,
    ///   `.storage` otherwise.
    @discardableResult
    func commitManifest(label: String, _ make: (VersionView) async throws -> NextVersion) async throws -> Manifest {
        // One manifest commit at a time per handle: two interleaved ones would build on the
        // same version.
        await acquireManifestTurn()
        defer { releaseManifestTurn() }
        var policy = commitPolicy
        if fairness.winningBackToBack, fairness.othersAbout {
            // A quarter of maxCommitObjectAge at most: the pause must not age this commit's
            // objects toward vacuum's grace period (a test with 0.05 s / 0.5 s saw a segment
            // vacuumed while its writer paused).
            policy.yieldCeiling = min(fairness.lastCycle * 4, Self.fairnessMaxPause, .seconds(config.maxCommitObjectAge / 4))
        }
        var machine = CommitMachine(label: label, policy: policy, epoch: epoch, viewVersion: view.version,
                                    viewEpoch: view.manifest?.writerEpoch ?? 0, viewConfirmedAt: viewConfirmedAt,
                                    now: { ContinuousClock.now }, random: SystemRandomNumberGenerator())
        defer { viewConfirmedAt = max(viewConfirmedAt, machine.viewConfirmedAt) }
        var base = view
        var built = NextVersion(manifest: try template(base))
        var othersSeen = false, buildStart = ContinuousClock.now
        var lostTo: Manifest?  // the other writer's manifest a read-back found, the base of the next attempt
        var action = machine.start()
        while true {
            switch action {
            case .confirmView, .readLatest:
                let askedAt = ContinuousClock.now
                var after = view.version
                if case .readLatest(let v) = action { after = v }
                do {
                    if let latest = try await Self.latestManifest(cached, commits: commits, after: after, knownManifest: lostTo) {
                        advance(to: VersionView(latest, store: cached, metric: metric, previous: view))
                    }
                } catch {
                    action = machine.stepFailed(error)
                    continue
                }
                let (v, e) = (view.version, view.manifest?.writerEpoch ?? 0)
                action = action == .confirmView ? machine.viewConfirmed(version: v, writerEpoch: e, askedAt: askedAt)
                    : machine.latestRead(version: v, writerEpoch: e, askedAt: askedAt)
            case .build:
                base = view
                buildStart = ContinuousClock.now
                if let m = base.manifest, m.writerID != writerID { othersSeen = true }
                do {
                    built = try await make(base)
                } catch {
                    action = machine.stepFailed(error)
                    continue
                }
                built.manifest.version = base.version + 1
                built.manifest.parentVersion = base.version
                built.manifest.commitTimeMicros = max(Int64(Date().timeIntervalSince1970 * 1_000_000), (base.manifest?.commitTimeMicros ?? 0) + 1)
                built.manifest.writerID = writerID
                built.manifest.writerEpoch = max(built.manifest.writerEpoch, base.manifest?.writerEpoch ?? 0)
                action = machine.built()
            case .put:
                do {
                    let v = built.manifest.version
                    try await commits.commit(version: v, manifest: Manifest.objectName(version: v), try built.manifest.encode())
                    action = machine.putAnswered()
                } catch let e as StoreError {
                    action = machine.putFailed(e)
                } catch {
                    throw VecgoError.wrap(error, label)  // not sent (encoding failed, cancelled before sending)
                }
            case .readBack:
                // A retried create-if-absent whose first attempt landed also answers "exists",
                // and a failed one may have landed too: if the manifest there is this very one,
                // the commit succeeded. Not knowing is an error (retrying blindly could apply
                // this batch twice).
                do {
                    let existing = try await Self.committedManifest(version: built.manifest.version, cached, commits: commits)
                    if existing != built.manifest { othersSeen = true; lostTo = existing }
                    action = machine.readBack(existing == built.manifest ? .ours : .other(version: existing.version))
                } catch let e as VecgoError where e.code == .notFound {
                    action = machine.readBack(.missing)
                } catch {
                    action = machine.readBackFailed(error)
                }
            case .sleep(let d):
                do {
                    try await Task.sleep(for: d)
                    action = machine.slept()
                } catch {
                    action = machine.cancelled()
                }
            case .done:
                metrics.lostRaces(machine.racesLost, label: label, logger: config.logger)
                fairness.winningBackToBack = machine.racesLost == 0 && base.manifest?.writerID == writerID
                fairness.commitsSinceOthers = othersSeen ? 0 : fairness.commitsSinceOthers + 1
                if othersSeen { fairness.othersSeenAt = ContinuousClock.now }
                fairness.lastCycle = ContinuousClock.now - buildStart
                advance(to: VersionView(built.manifest, store: cached, metric: metric, previous: base, pk: built.pk,
                                        changes: built.live))
                return built.manifest
            case .fail(let error):
                throw error
            }
        }
    }

    /// What this handle's last commits tell about other writers (see ``CommitMachine/Policy/yieldCeiling``).
    struct Fairness {
        /// The last commit built on this handle's own previous version without losing a race.
        var winningBackToBack = false
        /// Commits of this handle since it last met a version of another writer.
        var commitsSinceOthers = Int.max / 2
        /// When this handle last met a version of another writer.
        var othersSeenAt: ContinuousClock.Instant?
        /// How long the last commit took from its last build to its version.
        var lastCycle: Duration = .zero

        /// Whether other writers were about lately: met within the last `fairnessWindow`
        /// commits or `fairnessWindowTime`. Both, because a writer the winner starves makes no
        /// version the winner could meet: a window of commits alone closes on it (seen in the
        /// soak: a writer out of time after losing 22 races in a row).
        var othersAbout: Bool {
            commitsSinceOthers < Vecgo.fairnessWindow
                || othersSeenAt.map { ContinuousClock.now - $0 < Vecgo.fairnessWindowTime } ?? false
        }
    }

    /// Commits after meeting another writer's version during which a writer winning back-to-back
    /// still pauses before building.
    static let fairnessWindow = 16
    /// The time after meeting another writer's version during which it still pauses (a writer
    /// alone stops pausing after both windows).
    static let fairnessWindowTime: Duration = .seconds(120)
    /// The longest pause (the pause is random, up to 4× the last commit's build-to-version time).
    static let fairnessMaxPause: Duration = .seconds(1)

    /// The limits of a commit, from the options.
    var commitPolicy: CommitMachine.Policy {
        CommitMachine.Policy(timeBudget: config.commitTimeout, maxAttempts: config.commitAttempts,
                             maxViewAge: .seconds(config.maxCommitObjectAge))
    }

    /// A pk-index name no other commit attempt uses (a put overwrites, so names must differ).
    nonisolated func pkIndexName(version: UInt64) -> String {
        "pkindex_\(Manifest.objectName(version: version).dropFirst(9).dropLast(4))-\(writerID)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).bin"
    }

    /// Writes the key index of the version `m` will become (`m.version + 1`, its segments) under
    /// a fresh name and points `m` at it, as the first of these that applies:
    ///
    /// 1. a delta layer holding only `changes`, on top of the chain `m` has (its base's), while
    ///    the chain stays within ``maxPKIndexLayers`` layers and its deltas within half as many
    ///    entries as its full layer;
    /// 2. a merged delta holding what all the base's deltas and `changes` did to their keys
    ///    (each key's location now, or a tombstone), right on the full layer: a chain of two,
    ///    while those keys stay within half the full layer's entries. Its cost follows the
    ///    keys changed since the full layer, not the database;
    /// 3. a full index of `index` (a chain of one): when there is no chain yet, when `changes`
    ///    is nil (compaction), when the deltas' keys are not known, or when they outgrew half
    ///    the full layer.
    ///
    /// Records each segment's dead-row count in `m` (readers skip the pk-index when no segment
    /// has dead rows): `deadRows` when the caller kept them up to date, else counted from `index`.
    ///
    /// - Parameters:
    ///   - index: the version's key index over `m.segments` (ordinals of `m.segments`).
    ///   - changes: what changed against the base: keys set (new locations, ordinals of
    ///     `m.segments`) and keys removed; nil when a full index must be written.
    ///   - base: the base version's key index and layer sizes (nil for none).
    /// - Returns: the key index of the new version, for its view.
    nonisolated func writePKIndex(_ index: PKIndex, changes: PKChanges?, base: PKChain?, deadRows: [UInt64]?,
                      into m: inout Manifest) async throws -> PKChain {
        let next = m.version + 1
        let baseLayers = m.pkIndexLayers
        let name = pkIndexName(version: next)
        let names = m.segments.map(\.name)
        /// A delta of `entries` (ordinals of `m.segments`) and `tombstones`, naming only the
        /// segments its entries point into, in the manifest's order.
        func delta(_ entries: [UInt64: PKIndex.Location], tombstones: [UInt64]) throws -> [UInt8] {
            let used = Set(entries.values.map(\.segment)).sorted()
            let local = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, UInt32($0)) })
            return try PKIndex(version: next, segments: used.map { names[Int($0)] },
                               entries: entries.mapValues { PKIndex.Location(segment: local[$0.segment]!, row: $0.row) },
                               tombstones: tombstones.sorted(), kind: .delta).encode()
        }
        let chain: PKChain
        let bytes: [UInt8]
        let merged: Set<UInt64>? = {
            guard let changes, let keys = base?.deltaKeys, !baseLayers.isEmpty else { return nil }
            return keys.union(changes.assigned.keys).union(changes.removed)
        }()
        if let changes, let base, !baseLayers.isEmpty, baseLayers.count < Self.maxPKIndexLayers,
           2 * (base.deltaEntries + changes.size) <= base.fullEntries {
            bytes = try delta(changes.assigned, tombstones: changes.removed)
            m.pkIndexBaseLayers = baseLayers
            chain = PKChain(index: index, fullEntries: base.fullEntries, deltaEntries: base.deltaEntries + changes.size,
                            deltaKeys: merged)
        } else if let merged, let base, 2 * merged.count <= base.fullEntries {
            var entries: [UInt64: PKIndex.Location] = [:]
            var tombstones: [UInt64] = []
            for key in merged {
                if let at = index.entries[key] { entries[key] = at } else { tombstones.append(key) }
            }
            bytes = try delta(entries, tombstones: tombstones)
            m.pkIndexBaseLayers = [baseLayers[0]]
            chain = PKChain(index: index, fullEntries: base.fullEntries, deltaEntries: merged.count, deltaKeys: merged)
        } else {
            bytes = try PKIndex(version: next, segments: names, entries: index.entries).encode()
            m.pkIndexBaseLayers = []
            chain = PKChain(index: index, fullEntries: index.entries.count, deltaEntries: 0, deltaKeys: [])
        }
        try await remote.put(name, bytes)
        m.pkIndexObject = name
        m.pkIndexSize = UInt64(bytes.count)
        var dead = deadRows ?? []
        if deadRows == nil {
            var live = [UInt64](repeating: 0, count: m.segments.count)
            for loc in index.entries.values where Int(loc.segment) < live.count { live[Int(loc.segment)] += 1 }
            dead = zip(m.segments, live).map { $0.rowCount - min($1, $0.rowCount) }
        }
        for i in m.segments.indices { m.segments[i].deadRows = min(dead[i], m.segments[i].rowCount) }
        var result = chain
        result.index.version = next
        result.index.segments = names
        return result
    }

    /// The key index of the version `m` becomes once `deletes` and then `segments` (appended to
    /// `m.segments` here) apply on top of `base`, the base's key index; the keys changed, the
    /// rows killed and added, and each segment's dead rows (nil when the base has no counts).
    /// Off the actor: it copies and updates the whole key → row map.
    @concurrent
    nonisolated static func applyBatch(deletes: Set<UInt64>, segments: [(ref: SegmentRef, liveRows: [UInt64: Int])],
                                       base: PKIndex?, into m: inout Manifest) async
        -> (pk: PKIndex, changes: PKChanges, live: LiveChanges, dead: [UInt64]?) {
        var pk = base ?? PKIndex(version: 0, segments: [], entries: [:])
        // Dead rows follow from the base's counts and the old locations of the keys this
        // commit changes (counted from the whole index only when the base has no counts).
        var dead: [UInt64]? = m.segments.allSatisfy { ($0.deadRows ?? .max) < UInt64(UInt32.max) }
            ? m.segments.map { $0.deadRows! } : nil
        var changes = PKChanges()
        var live = LiveChanges()
        for k in deletes {
            guard let old = pk.entries.removeValue(forKey: k) else { continue }  // nothing to delete
            changes.removed.append(k)
            live.died.append(old)
            dead?[Int(old.segment)] += 1
        }
        for (ref, liveRows) in segments {
            m.segments.append(ref)
            dead?.append(ref.rowCount - UInt64(liveRows.count))  // a graph segment keeps rows replaced in the batch
            let ordinal = UInt32(m.segments.count - 1)
            changes.assigned.reserveCapacity(changes.assigned.count + liveRows.count)
            for (k, row) in liveRows {
                let loc = PKIndex.Location(segment: ordinal, row: UInt32(row))
                if let old = pk.entries.updateValue(loc, forKey: k) {
                    live.died.append(old)
                    dead?[Int(old.segment)] += 1
                }
                changes.assigned[k] = loc
                live.born.append(loc)
            }
        }
        return (pk, changes, live, dead)
    }

    /// The most layers a pk-index chain gets before a commit writes a full index again.
    static let maxPKIndexLayers = 16

    /// Moves this handle's view forward, never back.
    func advance(to newer: VersionView) {
        if newer.version > view.version { view = newer }
    }

    func acquireManifestTurn() async {
        guard manifestBusy else {
            manifestBusy = true
            return
        }
        await withCheckedContinuation { manifestWaiters.append($0) }  // handed the turn by release
    }

    func releaseManifestTurn() {
        if manifestWaiters.isEmpty {
            manifestBusy = false
        } else {
            manifestWaiters.removeFirst().resume()
        }
    }

    /// A segment this writer wrote for a commit not yet published.
    struct OwnObject: Sendable {
        var name: String
        let bytes: [UInt8]
        var written: ContinuousClock.Instant
    }

    /// Writes a new segment object under a name no one else uses.
    func writeOwnSegment(_ bytes: [UInt8], tag: String = "") async throws -> OwnObject {
        segmentSequence += 1
        let name = "segment_\(writerID)-\(tag)\(segmentSequence).bin"
        let written = ContinuousClock.now
        try await remote.put(name, bytes)
        return OwnObject(name: name, bytes: bytes, written: written)
    }

    /// Vacuum deletes unreferenced objects older than its grace period, and an object waiting
    /// for its manifest is unreferenced. So a commit never publishes an object older than
    /// `maxCommitObjectAge`: at each build, one older than half of it is written again under a
    /// new name (which no vacuum that listed before can have seen), which leaves the other half
    /// for the build and the put. The time from build to put is not bounded (README, "Not done
    /// yet"). Returns whether it was renamed.
    func keepFresh(_ object: inout OwnObject) async throws -> Bool {
        guard ContinuousClock.now - object.written > .seconds(config.maxCommitObjectAge / 2) else { return false }
        let bytes = object.bytes.isEmpty ? try await remote.read(object.name) : object.bytes  // not kept: read back
        let renamed = try await writeOwnSegment(bytes, tag: object.name.contains("-c") ? "c" : "")
        object = OwnObject(name: renamed.name, bytes: object.bytes, written: renamed.written)
        return true
    }

    /// Makes every pending write durable as one new version.
    ///
    /// The segment (new rows) is written first under a name unique to this writer; then, for
    /// the newest version, a pk-index layer (the keys this commit changed, on top of that
    /// version's layers; now and then the whole key → row map) and the manifest, which is
    /// created only if absent. When another writer committed first the commit re-reads the
    /// winner and builds on it: new rows and changes to keys the winner did not touch merge;
    /// an upsert or delete of a key the winner also changed throws `.conflict`, and every
    /// pending write stays in this handle.
    ///
    /// - Returns: the version now committed (unchanged when nothing was pending).
    @discardableResult
    public func commit() async throws -> UInt64 {
        try checkWritable()
        while commitTask != nil || spilling {  // one commit at a time, and never during a spill
            if let running = commitTask { _ = try? await running.value } else { await waitWhileSpilling() }
        }
        guard !pending.isEmpty else { return version }
        // The batch leaves `pending` now, so writes made while it is published are the next
        // commit's; if publishing fails they are merged back on top of it.
        let batch = pending
        pending = PendingWrites(dimension: dimension, metric: metric)
        flushing = batch
        // The whole commit, state changes included, runs in one task on this actor: when its
        // value is ready, `commitTask` is already cleared for the next commit.
        let rows = batch.count
        let task = Task { () async throws -> UInt64 in
            defer {
                self.flushing = nil
                self.commitTask = nil
                self.hiddenRows = nil  // of a batch and version gone: rebuilt by the next search
            }
            do {
                let v: UInt64
                do { v = try await self.publish(batch) } catch {
                    self.metrics.commitEnded(.failure(error), rows: rows, logger: self.config.logger)
                    throw error
                }
                self.metrics.commitEnded(.success(v), rows: rows, logger: self.config.logger)
                batch.memtable.graph.retire()  // its rows are in the version now
                let published = self.view  // no await since publish: this is the version it made
                self.backgroundCommitError = nil
                self.spillError = nil
                await self.rebaseTouches(committedOn: self.builtOn, published: published)
                return v
            } catch {
                let newer = self.pending
                self.pending = batch.merged(with: newer)  // new tables: the old ones are done with
                batch.memtable.graph.retire()
                newer.memtable.graph.retire()
                throw error
            }
        }
        commitTask = task
        return try await task.value
    }

    /// Writes made while the last commit was in flight were checked against the view before
    /// it. When no other writer changed their keys up to the version that commit built on,
    /// move them to the new view, so this handle's own commit is not taken for a conflict.
    func rebaseTouches(committedOn base: VersionView?, published: VersionView) async {
        guard let base, let observed = pending.touchedView, observed.version < published.version else { return }
        if observed.version != base.version {
            let changed: UInt64?
            do { changed = try await Self.firstChangedKey(pending.touched, from: observed, to: base) } catch { return }
            guard changed == nil else { return }
        }
        // `published` was captured before any await: the view may have moved on since, past
        // commits of others that these keys were not checked against.
        if pending.touchedView === observed { pending.touchedView = published }
    }

    /// The first of `keys` whose row differs between two versions: a different row (added,
    /// deleted or replaced). A row that only moved (a compaction copied it) is the same row.
    static func firstChangedKey(_ keys: Set<UInt64>, from old: VersionView, to new: VersionView) async throws -> UInt64? {
        let before = try await old.pk()?.entries ?? [:], after = try await new.pk()?.entries ?? [:]
        for k in keys where before[k] != after[k] {
            guard let a = before[k], let b = after[k] else { return k }
            if old.segments[Int(a.segment)].ref.name == new.segments[Int(b.segment)].ref.name {
                if a.row == b.row { continue }  // the same row; only the segment's ordinal moved
                return k
            }
            let ra = try await old.segments[Int(a.segment)].rows([Int(a.row)], include: .all)[Int(a.row)]
            let rb = try await new.segments[Int(b.segment)].rows([Int(b.row)], include: .all)[Int(b.row)]
            guard let ra, let rb, ra.0 == rb.0, ra.1 == rb.1, ra.2 == rb.2 else { return k }
        }
        return nil
    }

    /// Writes `batch` as the next version (see ``commit()``): its rows written out before
    /// (spills) and its memtable's, as segments, then the manifest that publishes them all.
    func publish(_ batch: PendingWrites) async throws -> UInt64 {
        do {
            var segments: [(ref: SegmentRef, liveRows: [UInt64: Int], object: OwnObject)] =
                batch.spilled.filter { !$0.liveRows.isEmpty }.map { ($0.ref, $0.liveRows, $0.object) }
            if batch.memtable.liveCount > 0 { segments.append(try await buildSegment(batch.memtable)) }
            let deletes = batch.deletes, touched = batch.touched, observed = batch.touchedView
            try await commitManifest(label: "committing") { base in
                self.builtOn = base
                var m = try self.template(base)
                let chain = try await base.pkChain()
                if !touched.isEmpty, let observed, observed.version != base.version,
                   let k = try await Self.firstChangedKey(touched, from: observed, to: base) {
                    throw VecgoError(.conflict, "key \(k) was changed by another writer after this handle read version \(observed.version) (now \(base.version)); the pending writes are kept: discardPending() and re-apply them, or retry later")
                }
                // The batch's segments: rows written out before the commit (oldest first), then
                // the memtable's; a key is live in one of them at most.
                for i in segments.indices {
                    if try await self.keepFresh(&segments[i].object) { segments[i].ref.name = segments[i].object.name }
                }
                let (pk, changes, live, dead) = await Self.applyBatch(deletes: deletes, segments: segments.map { ($0.ref, $0.liveRows) },
                                                                      base: chain?.index, into: &m)
                let built = try await self.writePKIndex(pk, changes: changes, base: chain, deadRows: dead, into: &m)
                return NextVersion(manifest: m, pk: built, live: live)
            }
            // The new view holds these rows now: stop searching the batch in the same turn.
            flushing = nil
            return version
        } catch {
            throw VecgoError.wrap(error, "committing")
        }
    }
}
