// The write buffer: inserts, upserts and deletes (by id or string key) into pending writes,
// id leases, pending rows written out as segments past the memory limit, discarding them.
import IndexCore
public import SegmentFormat
import Stores
import Tiering
import Foundation
import Logging

extension Vecgo {
    /// Adds a row under a generated key; it is searchable at once and durable after the next
    /// ``commit()``. Generated keys are unique across concurrent writers: each writer reserves
    /// a block of them with a small commit of its own when it runs out.
    ///
    /// - Returns: the generated primary key.
    /// - Throws: ``VecgoError``: `.readOnly`, `.closed`, `.dimensionMismatch`, `.invalidArgument`
    ///   for NaN or infinity, `.storage`/`.fenced` when reserving keys fails.
    @discardableResult
    public func insert(_ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws -> UInt64 {
        try checkAcceptingWrites()
        try validate(vector, what: "vector")
        let id = try await generatedID()
        await waitWhileSpilling()
        try checkAcceptingWrites()  // close() may have begun during the awaits
        pending.put(id: id, vector: normalizedIfCosine(vector), metadata: metadata, payload: payload ?? [])
        try await afterWrite()
        return id
    }

    /// Adds many rows under generated keys, in order; see ``insert(_:metadata:payload:)``.
    /// Every row is checked before any is added.
    @discardableResult
    public func batchInsert(_ rows: [(vector: [Float], metadata: Metadata, payload: [UInt8]?)]) async throws -> [UInt64] {
        try checkAcceptingWrites()
        for (i, r) in rows.enumerated() { try validate(r.vector, what: "row \(i)'s vector") }
        var ids: [UInt64] = []
        ids.reserveCapacity(rows.count)
        for _ in rows { ids.append(try await generatedID()) }  // all keys first: a failure adds no row
        await waitWhileSpilling()
        try checkAcceptingWrites()
        for (id, r) in zip(ids, rows) {
            pending.put(id: id, vector: normalizedIfCosine(r.vector), metadata: r.metadata, payload: r.payload ?? [])
        }
        try await afterWrite()
        return ids
    }

    /// Writes the row of key `id`, replacing any row with that key (committed or pending).
    /// Searches see only the new row from now on.
    ///
    /// Keys are the caller's: any `UInt64`. Keys you choose and keys ``insert(_:metadata:payload:)``
    /// generates share one space; a database should use one kind or keep them apart (generated
    /// keys start at 1 and grow).
    public func upsert(id: UInt64, _ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws {
        await waitWhileSpilling()
        try checkAcceptingWrites()
        try validate(vector, what: "vector")
        pending.touch(id, view: view)
        pending.put(id: id, vector: normalizedIfCosine(vector), metadata: metadata, payload: payload ?? [])
        try await afterWrite()
    }

    /// Deletes the row of key `id` (pending or committed); deleting a missing key is not an
    /// error. Searches stop returning it at once; the next commit makes it durable.
    public func delete(id: UInt64) async throws {
        await waitWhileSpilling()
        try checkAcceptingWrites()
        pending.touch(id, view: view)
        pending.delete(id: id)
    }

    /// After rows were added: writes them out as a segment when they reached
    /// `.maxSegmentBytes`, and starts a background commit when `.memtableBudget` says so.
    func afterWrite() async throws {
        try await spillIfFull()
        flushIfOverBudget()
    }

    /// When the memtable holds `.maxSegmentBytes` of vectors, writes its rows out as a segment
    /// (built off the actor, uploaded) that the next commit publishes; searches see the rows
    /// all along (from the memtable until the segment replaces it), other writes wait.
    func spillIfFull() async throws {
        guard !spilling, spillError == nil, pending.memtable.count * dimension * 4 >= config.maxSegmentBytes else { return }
        spilling = true
        defer {
            spilling = false
            for w in spillWaiters { w.resume() }
            spillWaiters.removeAll()
        }
        let table = pending.memtable
        do {
            let built = try await buildSegment(table)
            // Writes waited, but a failed commit may have merged its batch back into `pending`, or
            // `discardPending()` emptied it, while the segment was built: then the table written
            // out is no longer the pending one, and the segment is dropped (an orphan for vacuum).
            guard pending.memtable.graph === table.graph, pending.memtable.count == table.count else { return }
            pending.spilled.append(Spill(object: OwnObject(name: built.object.name, bytes: [], written: built.object.written),
                                         ref: built.ref, liveRows: built.liveRows,
                                         reader: SegmentReader(ref: built.ref, store: cached, metric: metric, budget: view.budget)))
            pending.memtable = Memtable(dimension: dimension, metric: metric)
            table.graph.retire()  // searched through the segment's reader from now on
        } catch {
            guard pending.memtable.graph === table.graph else { return }  // not the pending table any more
            // The write that crossed the limit succeeded (its row is pending); only the spill failed.
            spillError = VecgoError.wrap(error, "writing \(table.liveCount) pending rows out as a segment")
        }
    }

    func waitWhileSpilling() async {
        while spilling { await withCheckedContinuation { spillWaiters.append($0) } }
    }

    /// Lays `table` out as a segment (its layout by size), encodes it off the actor, and writes
    /// it under a name of this writer's. Returns its manifest entry, the segment row of each
    /// live key, and the object.
    func buildSegment(_ table: Memtable, tag: String = "") async throws -> (ref: SegmentRef, liveRows: [UInt64: Int], object: OwnObject) {
        let layout = config.layout(rows: table.liveCount, dimension: dimension)
        let hook = segmentBuildHook
        // On a background thread: searches on this handle keep the cores (see `Background`).
        let (encoded, liveRows, rows, minID, maxID) = try await Background.run { () throws -> (EncodedSegment, [UInt64: Int], Int, UInt64, UInt64) in
            let (contents, liveRows) = table.contents(layout, graphRowAdded: hook)
            return (try SegmentCodec.encode(contents), liveRows, contents.rowCount, contents.ids.min() ?? 0, contents.ids.max() ?? 0)
        }
        let object = try await writeOwnSegment(encoded.bytes, tag: tag)
        let ref = SegmentRef(name: object.name, size: UInt64(encoded.bytes.count), tailOffset: encoded.tailOffset,
                             tailLength: encoded.tailLength, rowCount: UInt64(rows), minID: minID, maxID: maxID)
        return (ref, liveRows, OwnObject(name: object.name, bytes: [], written: object.written))
    }

    /// The metadata field that holds a row's string key.
    public static let keyField = "_key"

    /// The `UInt64` key a string key is stored under: a 63-bit hash of its UTF-8 bytes with the
    /// top bit set, so it never meets a generated key. Two strings that hash alike are caught
    /// when the second is written (see ``upsert(key:_:metadata:payload:)``).
    public static func id(forKey key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        // splitmix64's finaliser spreads FNV-1a's bits.
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        h ^= h >> 31
        return h | (1 << 63)
    }

    /// Writes the row of string key `key`, replacing any row with that key. The key is kept in
    /// the row's metadata under ``keyField`` and comes back with it.
    ///
    /// - Throws: ``VecgoError`` `.invalidArgument` when another string key already stored
    ///   hashes to the same id (about one chance in 10^10 at a million keys), or the usual
    ///   errors of ``upsert(id:_:metadata:payload:)``.
    public func upsert(key: String, _ vector: [Float], metadata: Metadata = [:], payload: [UInt8]? = nil) async throws {
        let id = Self.id(forKey: key)
        try await checkNoCollision(key, id)
        var m = metadata
        m[Self.keyField] = .string(key)
        try await upsert(id: id, vector, metadata: m, payload: payload)
    }

    /// Deletes the row of string key `key`; see ``delete(id:)``.
    public func delete(key: String) async throws {
        let id = Self.id(forKey: key)
        try await checkNoCollision(key, id)
        try await delete(id: id)
    }

    /// Fails when the row stored under `id` belongs to another string key.
    func checkNoCollision(_ key: String, _ id: UInt64) async throws {
        try checkWritable()
        var stored: Metadata?
        let spill = (pending.spilled + (flushing?.spilled ?? [])).first { $0.liveRows[id] != nil }
        if let row = pending.memtable.row(id: id) ?? flushing?.memtable.row(id: id) {
            stored = row.metadata
        } else if let spill, let row = spill.liveRows[id] {
            do { stored = try await spill.reader.rows([row], include: .metadata)[row]?.0 } catch {
                throw VecgoError.wrap(error, "checking key '\(key)'")
            }
        } else if !pending.deletes.contains(id), !(flushing?.deletes.contains(id) ?? false) {
            let view = self.view
            do {
                if let loc = try await view.pk()?.entries[id] {
                    stored = try await view.segments[Int(loc.segment)].rows([Int(loc.row)], include: .metadata)[Int(loc.row)]?.0
                }
            } catch {
                throw VecgoError.wrap(error, "checking key '\(key)'")
            }
        }
        if let stored, case .string(let other)? = stored[Self.keyField], other != key {
            throw VecgoError(.invalidArgument, "string keys '\(key)' and '\(other)' hash to the same id \(id); rename one of them")
        }
    }

    /// Starts a commit in the background when the pending rows reach the memtable budget;
    /// writers go on writing into a new memtable meanwhile.
    /// Starts a background commit when the memtable reached its budget — unless the last one
    /// failed: then the writes wait for an explicit ``commit()`` (or ``discardPending()``),
    /// instead of every write starting a commit bound to fail the same way.
    func flushIfOverBudget() {
        guard let budget = config.memtableBudget, pending.memtable.count >= budget, commitTask == nil,
              backgroundCommitError == nil else { return }
        Task {
            do { try await self.commit() } catch { self.noteBackgroundFailure(error) }
        }
    }

    func noteBackgroundFailure(_ error: any Error) {
        backgroundCommitError = VecgoError.wrap(error, "committing in the background")
    }

    func normalizedIfCosine(_ v: [Float]) -> [Float] { metric == .cosine ? Distance.normalized(v) : v }

    /// Objects this handle wrote for writes not yet committed (pending rows written out as
    /// segments): its own vacuum keeps them.
    var pendingObjectNames: Set<String> {
        Set((pending.spilled + (flushing?.spilled ?? [])).map(\.object.name))
    }

    /// Writes not yet committed (rows added, replaced or deleted).
    public var pendingCount: Int { pending.count + (flushing?.count ?? 0) }

    /// Pending rows (a commit in flight's included) that searches still scan exactly because
    /// their memtable's graph does not hold them yet (see ``LazyGraph``); 0 below the size at
    /// which a memtable is searched through its graph.
    package var pendingRowsOutsideGraph: Int {
        [pending.memtable, flushing?.memtable].compactMap { $0 }.reduce(0) { sum, table in
            sum + (table.count < Memtable.exactBelow ? 0 : max(0, table.count - table.graph.builtRows))
        }
    }

    /// Drops every write not yet committed (not one being committed right now) and returns how
    /// many there were: the way out of a `.conflict`, after which the handle can ``refresh()``
    /// and the caller re-apply what still makes sense.
    @discardableResult
    public func discardPending() throws -> Int {
        try checkWritable()
        let n = pending.count
        pending.memtable.graph.retire()
        pending = PendingWrites(dimension: dimension, metric: metric)
        backgroundCommitError = nil  // its writes are gone with the rest
        spillError = nil
        return n
    }

    /// The committed version this handle sees (0 before the first commit).
    public var version: UInt64 { view.version }

    /// The next generated key, reserving a block of keys first when the lease is used up.
    func generatedID() async throws -> UInt64 {
        if idLease.isEmpty {
            let size = config.idLeaseSize
            var reserved: Range<UInt64> = 0..<0
            try await commitManifest(label: "reserving \(size) keys") { base in
                var m = try self.template(base)
                let start = max(m.nextID, 1)
                reserved = start..<start + size
                m.nextID = start + size
                return NextVersion(manifest: m)
            }
            idLease = reserved
        }
        let id = idLease.lowerBound
        idLease = idLease.dropFirst()
        return id
    }
}
