// Locating versions: the newest manifest (through the commit store, probing forward from a
// listing), a version's manifest by number or time, and the list of versions kept.
import IndexCore
import SegmentFormat
import Stores
import Tiering
import Foundation
import Logging

extension Vecgo {
    /// Finds the newest manifest.
    ///
    /// - When `commits` keeps its own record (DynamoDB): its latest version, then one read
    ///   (through `commits` when the object is not there yet: an unfinished commit).
    /// - Knowing a version `known` that exists: probes `MANIFEST-<known+1>`, `+3`, `+7`, … (doubling steps) by
    ///   size and binary-searches the gap — two requests when nothing is new, no listing
    ///   (listings cost more, and on S3 Express read the whole prefix). Versions are
    ///   contiguous, and vacuum deletes the oldest first, so if `known` still exists every
    ///   version after it up to the newest does too.
    /// - Holding `known`'s manifest (`knownManifest`, e.g. what a lost race's read-back found):
    ///   one probe of `MANIFEST-<known+1>`; when it is absent that manifest is the newest, read
    ///   no second time. This keeps a writer that lost a race as few round trips from its next
    ///   put as the winner is (issue 15, part 3).
    /// - Otherwise (opening, or `known` was vacuumed): one LIST of `MANIFEST-` names, then one
    ///   read of the last.
    static func latestManifest(_ store: any BlobStore, commits: any CommitStore, after known: UInt64 = 0,
                               knownManifest: Manifest? = nil) async throws -> Manifest? {
        switch try await commits.latest() {
        case .empty: return nil
        case .version(let v): return try await committedManifest(version: v, store, commits: commits)
        case .askObjects: break
        }
        if known > 0, let held = knownManifest, held.version == known {
            guard try await manifestExists(known + 1, store) else { return held }
            return try await manifestAt(version: newestVersion(after: known + 1, store) ?? known + 1, store)
        }
        if known > 0, let v = try await newestVersion(after: known, store) {
            return try await manifestAt(version: v, store)
        }
        let listing: [ObjectInfo]
        do { listing = try await store.list(prefix: "MANIFEST-") } catch {
            throw VecgoError.wrap(error, "listing MANIFEST-* to find the newest version")
        }
        // A listing only says where to start: a damaged or stale one may miss the newest
        // versions. The version after the newest it names must be absent (probed while that
        // manifest is read); when it exists, probing forward finds the newest.
        let listed = listing.compactMap { o in Manifest.version(fromObjectName: o.name).map { ($0, o) } }
        guard let (newest, info) = listed.max(by: { $0.0 < $1.0 }) else {
            // No manifest name at all: an empty database, or a listing that lost them; version 1 decides.
            guard try await manifestExists(1, store) else {
                guard listing.isEmpty else {
                    throw VecgoError(.corrupted, "the listing of MANIFEST-* holds \(listing.count) entries but no manifest name (first: '\(listing[0].name)'), and version 1 does not exist; cannot tell the newest version")
                }
                return nil
            }
            return try await manifestAt(version: newestVersion(after: 1, store) ?? 1, store)
        }
        async let newer = manifestExists(newest + 1, store)
        async let read: Result<Manifest, any Error> = { () async -> Result<Manifest, any Error> in
            do {  // a ranged read of the listed size: cached like any other read
                return .success(try await store.readChecked(info.name, ranges: [0..<info.size]) {
                    try Manifest.decode($0[0], object: info.name)
                })
            } catch { return .failure(error) }
        }()
        if try await newer {
            _ = await read
            return try await manifestAt(version: newestVersion(after: newest + 1, store) ?? newest + 1, store)
        }
        return try await read.get()
    }

    /// Whether `MANIFEST-<version>` exists (a size request; no listing).
    static func manifestExists(_ version: UInt64, _ store: any BlobStore) async throws -> Bool {
        do {
            _ = try await store.size(Manifest.objectName(version: version))
            return true
        } catch let e as StoreError where e.code == .notFound {
            return false
        }
    }

    /// The newest version, found by probing forward from `known` (see ``latestManifest(_:after:)``);
    /// nil when `known` no longer exists.
    static func newestVersion(after known: UInt64, _ store: any BlobStore) async throws -> UInt64? {
        func exists(_ v: UInt64) async throws -> Bool { try await manifestExists(v, store) }
        var present = known, step: UInt64 = 1
        var missing = known + 1
        while try await exists(missing) {  // gallop: +1, +2, +4, …
            present = missing
            step = min(step * 2, 1 << 40)
            missing = present + step
        }
        while missing - present > 1 {  // the newest lies in [present, missing)
            let mid = present + (missing - present) / 2
            if try await exists(mid) { present = mid } else { missing = mid }
        }
        if present == known, !(try await exists(known)) { return nil }  // vacuumed under us
        return present
    }

    /// The manifest of `version`: one read by name, no listing.
    static func manifestAt(version: UInt64, _ store: any BlobStore) async throws -> Manifest {
        let name = Manifest.objectName(version: version)
        do {
            return try await store.readChecked(name, ranges: [0..<UInt64.max]) { try Manifest.decode($0[0], object: name) }
        } catch let e as StoreError where e.code == .notFound {
            throw VecgoError(.notFound, "version \(version) does not exist (no \(name)); vacuum may have removed it", underlying: e)
        }
    }

    /// The manifest of `version` as ``manifestAt(version:_:)`` reads it, or, when its object is
    /// missing, as `commits` has it (a commit whose writer stopped before writing the object).
    static func committedManifest(version: UInt64, _ store: any BlobStore, commits: any CommitStore) async throws -> Manifest {
        do { return try await manifestAt(version: version, store) } catch let e as VecgoError where e.code == .notFound {
            let name = Manifest.objectName(version: version)
            guard let bytes = try await commits.committedManifest(version: version, name: name) else { throw e }
            return try Manifest.decode(bytes, object: name)
        }
    }

    /// The newest manifest committed at or before `date`: versions are committed in time
    /// order, so a binary search reads O(log n) manifests.
    static func manifestAsOf(_ date: Date, _ store: any BlobStore) async throws -> Manifest {
        let names = try await store.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
        let micros = Int64(date.timeIntervalSince1970 * 1_000_000)
        var lo = 0, hi = names.count - 1
        var best: Manifest?
        while lo <= hi {
            let mid = (lo + hi) / 2
            let m = try await manifestAt(version: names[mid], store)
            if m.commitTimeMicros <= micros {
                best = m
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        guard let best else {
            throw VecgoError(.notFound, "no version was committed at or before \(date)")
        }
        return best
    }

    /// The versions under a store's prefix, oldest first.
    public static func versions(_ backend: Backend) async throws -> [VersionInfo] {
        let store: any BlobStore
        switch backend {
        case .remote(let s): store = s
        case .directory(let path):
            do { store = try LocalDirectoryStore(root: path) } catch { throw VecgoError.wrap(error, "opening \(path)") }
        }
        do {
            let names = try await store.list(prefix: "MANIFEST-").compactMap { Manifest.version(fromObjectName: $0.name) }
            var out: [VersionInfo] = []
            for v in names {
                let m = try await manifestAt(version: v, store)
                out.append(VersionInfo(version: m.version, commitTime: Date(timeIntervalSince1970: Double(m.commitTimeMicros) / 1e6),
                                       segments: m.segments.count, rows: m.segments.reduce(0) { $0 + $1.rowCount },
                                       writerEpoch: m.writerEpoch))
            }
            return out
        } catch {
            throw VecgoError.wrap(error, "listing versions")
        }
    }
}
