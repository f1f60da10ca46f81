// The L2 disk tier: sparse block files in a directory that outlives the process, read page by
// page on the query path and written by one background writer that merges new pages in; local
// faults (a full, read-only or vanished directory) are logged once and leave it RAM-only, never failing a read.
import Foundation
public import Logging
import Stores
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The L2 tier: large blocks kept as sparse files in a directory that outlives the process.
///
/// - Each block (4 MiB by default) is one file named by a hash of its object name and block
///   index, so no object name can reach outside the directory. A file holds only the pages
///   (4 KiB by default) that were fetched: a presence bitmap says which, each held page has its
///   own CRC32C, and the header records the full object name and, when the block holds the
///   object's end, where it is (``BlockFileHeader`` has the byte layout).
/// - ``get(_:pages:)`` reads the header and only the pages asked for, checks each of them, and
///   returns those the file holds; the caller fetches the others. A damaged or truncated file is
///   deleted and reported as a miss (then refetched), never served.
/// - Writes happen off the query path: ``enqueue(_:firstPage:_:endsObject:)`` hands pages to
///   one background writer through a queue bounded in bytes, dropping (and counting) pages when
///   it is full, so a slow disk never slows a query. The writer merges the new pages with the
///   checked pages of the block's existing file and writes the result under a temporary name,
///   then renames it, so a reader, in this process or another, never sees half a file. Two
///   processes merging into one block at once each write a whole, valid file; the pages of the
///   one renamed first are lost (a later miss), never corrupted.
/// - A restarted process finds the blocks by name: the directory is the index.
/// - The total size of the files stays under `capacityBytes`: the least recently used files are
///   removed, under an exclusive `flock` on the directory's lock file.
/// - ``invalidate(_:)`` drops a block (its queued pages and its file) whose bytes failed a
///   check above; a write of the block already under way is not renamed into place.
/// - Local faults never fail a read: a write that fails (disk full, directory not writable)
///   is dropped and its temporary file removed; a directory that vanished is created again,
///   and when it cannot be, the cache stops using the disk (the tiers above run RAM-only).
///   Each condition is logged once, as a warning.
public final class DiskCache: Sendable {
    /// The directory holding the block files.
    public let directory: String
    /// The size of one block (one file at most) in bytes.
    public let blockSize: Int
    /// The size of one page, the unit a file holds or not and checks, in bytes.
    public let pageSize: Int
    /// The size limit of all block files together.
    public let capacityBytes: Int
    /// The counters this cache updates.
    public let stats: TierStats
    let geometry: BlockGeometry
    private let state: Locked<IndexState>
    private let queued: Locked<WriteQueue>
    private let signal: AsyncStream<BlockKey>.Continuation
    private let pending: AtomicCounter
    private let maxQueuedBytes: Int
    private let worker: Task<Void, Never>
    let faults: LocalFaults

    struct IndexState {
        var sizes: [String: Int] = [:]
        var lastUse: [String: UInt64] = [:]
        var clock: UInt64 = 0
        var total = 0
    }

    /// Pages waiting to be written, merged per block, and how often each block was invalidated
    /// (a write renames its file into place only when that did not change since it was dequeued).
    struct WriteQueue {
        var blocks: [BlockKey: PendingBlock] = [:]
        var bytes = 0
        var generation: [BlockKey: UInt64] = [:]
    }

    /// The runs of pages queued for one block, applied in order (a later run wins), and where
    /// the object ends in the block when one of them said so.
    struct PendingBlock {
        var runs: [(firstPage: Int, bytes: [UInt8])] = []
        var end: Int?
        var bytes = 0
    }

    static let fileSuffix = ".vgc"

    /// Opens (creating if needed) a disk cache in `directory`.
    ///
    /// - Parameters:
    ///   - directory: where the block files live; it may be shared with other processes.
    ///   - capacityBytes: the most bytes of block files kept.
    ///   - blockSize: the size of one block, a multiple of `pageSize` (4 MiB by default).
    ///   - pageSize: the size of one page (4 KiB by default); a ``CachingStore`` needs it to
    ///     equal its RAM block size.
    ///   - queueDepth: how many blocks' worth of bytes may wait to be written before new pages
    ///     are dropped.
    ///   - stats: the counters to update.
    ///   - logger: where warnings about local faults go (silent by default).
    /// - Throws: ``TieringError`` when the directory cannot be created or the sizes do not fit.
    package init(directory: String, capacityBytes: Int, blockSize: Int = 4 << 20, pageSize: Int = 4096,
                queueDepth: Int = 32, stats: TierStats = TierStats(), logger: Logger = .silent) throws {
        guard pageSize > 0, blockSize >= pageSize, blockSize % pageSize == 0, blockSize <= Int(UInt32.max - 1) else {
            throw TieringError("the disk block size (\(blockSize)) must be a multiple of its page size (\(pageSize))")
        }
        self.directory = directory
        self.blockSize = blockSize
        self.pageSize = pageSize
        self.capacityBytes = capacityBytes
        self.stats = stats
        self.geometry = BlockGeometry(pageSize: pageSize, pagesPerBlock: blockSize / pageSize)
        self.maxQueuedBytes = max(1, queueDepth) * blockSize
        let faults = LocalFaults(directory: directory, logger: logger)
        self.faults = faults
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TieringError("cannot create cache directory '\(directory)': \(error)")
        }
        var s = IndexState()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(Self.fileSuffix) {
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0 else { continue }
            s.sizes[name] = Self.allocated(Int(st.st_size))
            s.lastUse[name] = UInt64(st.st_mtim.tv_sec)  // older files first in line for eviction
            s.total += Self.allocated(Int(st.st_size))
        }
        s.clock = s.lastUse.values.max() ?? 0
        let state = Locked(s)
        self.state = state
        let queued = Locked(WriteQueue())
        self.queued = queued
        // Each block enters the stream once per stay in the queue, so the stream is bounded by
        // the queue's bytes.
        let (stream, continuation) = AsyncStream<BlockKey>.makeStream(bufferingPolicy: .unbounded)
        self.signal = continuation
        let pending = AtomicCounter()
        self.pending = pending
        let dir = directory, cap = capacityBytes, g = geometry
        self.worker = Task.detached(priority: .utility) { [stats] in
            for await key in stream {
                let taken = queued.withLock { q -> (PendingBlock, UInt64)? in
                    guard let b = q.blocks.removeValue(forKey: key) else { return nil }
                    q.bytes -= b.bytes
                    return (b, q.generation[key, default: 0])
                }
                if let (block, generation) = taken, !faults.ramOnly {
                    DiskCache.writeBlock(dir: dir, key: key, block, g, state: state, capacity: cap, stats: stats,
                                         queued: queued, generation: generation, faults: faults)
                }
                pending.add(-1)
            }
        }
    }

    deinit {
        signal.finish()
    }

    /// The file name of a block: a 128-bit hash of the object name and the block index.
    static func fileName(_ key: BlockKey) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325, h2: UInt64 = 0x6c62_272e_07bb_0142
        for b in key.object.utf8 {
            h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3
            h2 = (h2 ^ UInt64(b)) &* 0x0000_0100_0000_01b3 &+ 0x9e37_79b9
        }
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(h1) + hex(h2) + "-" + String(key.index) + fileSuffix
    }

    // MARK: reads

    /// The pages among `pages` (indexes within the block) that the block's file holds.
    ///
    /// Only the header and the pages asked for are read, each checked against its CRC. A page
    /// past the object's end (when the file knows where it is) is returned empty; a page shorter
    /// than ``pageSize`` ends the object. The lookup counts as a disk hit when it returns every
    /// page asked for, else as a miss; a damaged or truncated file is removed and counted, never
    /// served (the result is then empty).
    ///
    /// - Parameters:
    ///   - key: the block.
    ///   - pages: page indexes within the block; those outside it are never found.
    /// - Returns: the bytes of each page found, by page index.
    public func get(_ key: BlockKey, pages: [Int]) -> [Int: [UInt8]] {
        let start = ContinuousClock.now
        guard let found = lookup(key, pages: pages) else {
            stats.disk(hit: false)
            return [:]
        }
        let all = pages.allSatisfy { found[$0] != nil }
        stats.disk(hit: all, bytes: found.values.reduce(0) { $0 + $1.count },
                   nanos: found.isEmpty ? nil : start.elapsedNanos)
        return found
    }

    /// The block's bytes when its file holds all of them; nil otherwise.
    public func get(_ key: BlockKey) -> [UInt8]? {
        get(key, range: 0..<blockSize)
    }

    /// The bytes of `range` within the block (clipped to the block and to the object's end)
    /// when the block's file holds every page `range` touches; nil otherwise (counted as a
    /// miss). Only the header and those pages are read and checked.
    public func get(_ key: BlockKey, range: Range<Int>) -> [UInt8]? {
        let start = ContinuousClock.now
        let lo = max(range.lowerBound, 0), hi = min(range.upperBound, blockSize)
        let pages = lo < hi ? Array(lo / pageSize...(hi - 1) / pageSize) : []
        guard let found = lookup(key, pages: pages), pages.allSatisfy({ found[$0] != nil }) else {
            stats.disk(hit: false)
            return nil
        }
        var out: [UInt8] = []
        out.reserveCapacity(hi - lo)
        for p in pages {
            let piece = found[p]!, base = p * pageSize
            let a = max(lo - base, 0), b = min(hi - base, piece.count)
            if a < b { out.append(contentsOf: piece[a..<b]) }
            if piece.count < pageSize { break }
        }
        stats.disk(hit: true, bytes: out.count, nanos: start.elapsedNanos)
        return out
    }

    /// The pages the block's file holds among `pages`, or nil without a usable file (a damaged
    /// one is removed and counted). Counts no hit or miss.
    private func lookup(_ key: BlockKey, pages: [Int]) -> [Int: [UInt8]]? {
        guard !faults.ramOnly else { return nil }
        let name = Self.fileName(key)
        let known = state.withLock { s -> Bool in
            guard s.sizes[name] != nil else { return false }
            s.clock += 1
            s.lastUse[name] = s.clock
            return true
        }
        guard known else { return nil }
        let path = directory + "/" + name
        switch Self.readPages(path: path, key: key, pages: pages, geometry) {
        case .ok(let found):
            return found
        case .missing:
            state.withLock { s in Self.forget(name, &s) }
            return nil
        case .damaged:
            unlink(path)
            state.withLock { s in Self.forget(name, &s) }
            stats.diskCorrupt.bump()
            return nil
        }
    }

    // MARK: writes

    /// Queues pages of a block to be merged into its file in the background; drops them (and
    /// counts a dropped write) when the queue is full.
    ///
    /// - Parameters:
    ///   - key: the block.
    ///   - firstPage: the index within the block of the first page of `bytes`.
    ///   - bytes: whole pages from `firstPage` on, except that the last may be short when
    ///     `endsObject` (ignored if they would reach past the block).
    ///   - endsObject: the object ends where `bytes` end.
    public func enqueue(_ key: BlockKey, firstPage: Int, _ bytes: [UInt8], endsObject: Bool) {
        let offset = firstPage * pageSize
        guard firstPage >= 0, offset + bytes.count <= blockSize, endsObject || bytes.count % pageSize == 0,
              !bytes.isEmpty || endsObject, !faults.ramOnly else { return }
        let accepted = queued.withLock { q -> Bool in
            guard q.bytes + bytes.count <= maxQueuedBytes else { return false }
            let isNew = q.blocks[key] == nil
            q.blocks[key, default: PendingBlock()].runs.append((firstPage, bytes))
            q.blocks[key]!.bytes += bytes.count
            if endsObject { q.blocks[key]!.end = offset + bytes.count }
            q.bytes += bytes.count
            if isNew {
                pending.increment()
                signal.yield(key)
            }
            return true
        }
        if !accepted { stats.diskDropped.bump() }
    }

    /// Drops a block whose bytes failed a check: its queued pages and its file. A write of the
    /// block already under way is not renamed into place, so the dropped bytes never return.
    public func invalidate(_ key: BlockKey) {
        queued.withLock { q in
            q.generation[key, default: 0] += 1
            if let b = q.blocks.removeValue(forKey: key) { q.bytes -= b.bytes }  // its signal finds nothing
        }
        let name = Self.fileName(key)
        unlink(directory + "/" + name)
        state.withLock { s in Self.forget(name, &s) }
    }

    /// Makes every later write of a block file fail as if `write` had returned this `errno`
    /// (nil: writes work again), to test how local faults are handled.
    @_spi(Testing) public func injectWriteFailure(_ code: Int32?) {
        faults.injected.withLock { $0 = code }
    }

    /// Whether the cache stopped using its directory (it vanished and could not be created again).
    public var isRAMOnly: Bool { faults.ramOnly }

    /// Queues a whole block from its start (shorter than ``blockSize`` when the object ends in
    /// it), as ``enqueue(_:firstPage:_:endsObject:)`` does.
    public func enqueue(_ key: BlockKey, _ bytes: [UInt8]) {
        enqueue(key, firstPage: 0, bytes, endsObject: bytes.count < blockSize)
    }

    /// Waits until every queued page has been written (or found not to fit).
    public func flush() async {
        while pending.value > 0 {
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    /// Bytes of block files this process knows of.
    public var bytesUsed: Int { state.withLock { $0.total } }

    // MARK: files

    enum ReadResult { case ok([Int: [UInt8]]), missing, damaged }

    /// Reads and checks the pages among `pages` that a block file holds: one `pread` for the
    /// header, then one per run of adjacent pages.
    static func readPages(path: String, key: BlockKey, pages: [Int], _ g: BlockGeometry) -> ReadResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .missing }
        defer { close(fd) }
        let maxHeader = BlockFile.maxHeaderSize(nameCount: key.object.utf8.count, g)
        guard let head = readFully(fd, offset: 0, count: maxHeader, allowShort: true) else { return .damaged }
        let header: BlockFileHeader
        switch BlockFile.decodeHeader(head, key: key, g) {
        case .header(let h): header = h
        case .otherObject: return .missing  // another object whose name hashes alike: a miss, not damage
        case .damaged: return .damaged
        }
        var found: [Int: [UInt8]] = [:]
        var held: [Int] = []
        for p in Set(pages).sorted() where p >= 0 && p < g.pagesPerBlock {
            if g.length(ofPage: p, end: header.end) == 0 {
                found[p] = []  // past the object's end
            } else if header.holds(p) {
                held.append(p)
            }
        }
        var i = 0
        while i < held.count {
            var j = i
            while j + 1 < held.count && held[j + 1] == held[j] + 1 { j += 1 }
            let rank = header.rank(held[i])
            let count = held[i...j].reduce(0) { $0 + g.length(ofPage: $1, end: header.end) }
            guard let data = readFully(fd, offset: header.dataStart + rank * g.pageSize, count: count, allowShort: false)
            else { return .damaged }
            var offset = 0
            for (k, p) in held[i...j].enumerated() {
                let piece = Array(data[offset..<offset + g.length(ofPage: p, end: header.end)])
                guard BlockFile.crc(piece) == header.crcs[rank + k] else { return .damaged }
                found[p] = piece
                offset += piece.count
            }
            i = j + 1
        }
        return .ok(found)
    }

    /// Every page of a block file, checked, with where the object ends; nil when there is no
    /// such file or it does not check out.
    static func readAllPages(path: String, key: BlockKey, _ g: BlockGeometry) -> (pages: [BlockPage], end: Int?)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) <= BlockFile.maxHeaderSize(nameCount: key.object.utf8.count, g) + g.blockSize,
              let file = readFully(fd, offset: 0, count: Int(st.st_size), allowShort: false),
              case .header(let header) = BlockFile.decodeHeader(file, key: key, g) else { return nil }
        var pages: [BlockPage] = []
        var offset = header.dataStart
        for p in 0..<g.pagesPerBlock where header.holds(p) {
            let n = g.length(ofPage: p, end: header.end)
            guard offset + n <= file.count else { return nil }
            let bytes = Array(file[offset..<offset + n])
            let crc = header.crcs[pages.count]
            guard BlockFile.crc(bytes) == crc else { return nil }
            pages.append(BlockPage(index: p, bytes: bytes, crc: crc))
            offset += n
        }
        return (pages, header.end)
    }

    /// `count` bytes at `offset`, or what the file has when `allowShort`; nil on a short read
    /// otherwise, or on an error.
    static func readFully(_ fd: Int32, offset: Int, count: Int, allowShort: Bool) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            done += n
        }
        if done < count {
            guard allowShort else { return nil }
            buffer.removeLast(count - done)
        }
        return buffer
    }

    /// The pages of a queued block merged with the checked pages of its existing file (the new
    /// ones win; pages that disagree with where the object ends are left out).
    static func merge(_ block: PendingBlock, existing: (pages: [BlockPage], end: Int?)?, _ g: BlockGeometry)
        -> (pages: [BlockPage], end: Int?) {
        var pages: [Int: [UInt8]] = [:]
        for run in block.runs {
            var offset = 0, p = run.firstPage
            while offset < run.bytes.count {
                pages[p] = Array(run.bytes[offset..<min(offset + g.pageSize, run.bytes.count)])
                offset += g.pageSize
                p += 1
            }
        }
        var end = block.end
        var kept: [Int: BlockPage] = [:]
        if let existing, end == nil || existing.end == nil || existing.end == end {
            end = end ?? existing.end
            for page in existing.pages where pages[page.index] == nil { kept[page.index] = page }
        }
        for (p, bytes) in pages { kept[p] = BlockPage(index: p, bytes: bytes, crc: BlockFile.crc(bytes)) }
        let valid = kept.values.filter { page in
            let n = g.length(ofPage: page.index, end: end)
            return n > 0 && page.bytes.count == n
        }
        return (valid.sorted { $0.index < $1.index }, end)
    }

    static func writeBlock(dir: String, key: BlockKey, _ block: PendingBlock, _ g: BlockGeometry,
                           state: Locked<IndexState>, capacity: Int, stats: TierStats,
                           queued: Locked<WriteQueue>, generation: UInt64, faults: LocalFaults) {
        let name = fileName(key), path = dir + "/" + name
        let merged = merge(block, existing: readAllPages(path: path, key: key, g), g)
        guard !merged.pages.isEmpty else { return }
        let file = BlockFile.encode(key, g, end: merged.end, pages: merged.pages)
        let size = allocated(file.count)
        guard size <= capacity else { return }
        let tmp = "\(dir)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        var fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ENOENT {
            // The directory vanished under us: create it again (the files it held are gone).
            guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else {
                faults.stopUsingDisk("the cache directory vanished and cannot be created again")
                return
            }
            state.withLock { $0 = IndexState(clock: $0.clock) }
            faults.warnOnce(.vanished, "the cache directory vanished; created it again (its cached blocks are lost)")
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            let code = errno
            if code == ENOTDIR {
                faults.stopUsingDisk("the cache directory is no longer a directory")
            } else {
                faults.writeFailed(code)
            }
            return
        }
        var done = 0, failure: Int32 = 0
        while done < file.count {
            if let injected = faults.injected.withLock({ $0 }) {
                failure = injected
                break
            }
            let n = file.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                failure = n < 0 ? errno : ENOSPC  // a write of 0 bytes: no room
                break
            }
            done += n
        }
        close(fd)
        if failure != 0 {
            unlink(tmp)
            faults.writeFailed(failure)
            return
        }
        // Room is made before the file is published, so the directory never holds more than
        // `capacity`, not even between a rename and the evictions it causes.
        let victims = state.withLock { s -> [String] in
            let replaced = s.sizes[name] ?? 0
            var victims: [String] = []
            while s.total - replaced + size > capacity, let oldest = s.lastUse.filter({ $0.key != name }).min(by: { $0.value < $1.value })?.key {
                victims.append(oldest)
                forget(oldest, &s)
            }
            return victims
        }
        if !victims.isEmpty {
            let lock = open(dir + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if lock >= 0 { flock(lock, LOCK_EX) }
            for v in victims { unlink(dir + "/" + v) }
            if lock >= 0 { flock(lock, LOCK_UN); close(lock) }
            stats.diskEvictions.bump(victims.count)
        }
        // Renamed into place only when the block was not invalidated since it was dequeued
        // (under the queue's lock, which ``invalidate(_:)`` takes before removing the file).
        let renamed = queued.withLock { q -> Int32 in
            guard q.generation[key, default: 0] == generation else { return -1 }
            return rename(tmp, path) == 0 ? 0 : errno
        }
        guard renamed == 0 else {
            unlink(tmp)
            if renamed > 0 { faults.writeFailed(renamed) }
            return
        }
        stats.diskWrites.bump()
        state.withLock { s in
            s.total += size - (s.sizes[name] ?? 0)
            s.sizes[name] = size
            s.clock += 1
            s.lastUse[name] = s.clock
        }
    }

    /// The bytes a file of `length` takes on disk (whole 4 KiB file-system blocks): what the
    /// capacity counts, so the directory's real use stays under it.
    static func allocated(_ length: Int) -> Int { (length + 4095) / 4096 * 4096 }

    static func forget(_ name: String, _ s: inout IndexState) {
        if let size = s.sizes.removeValue(forKey: name) { s.total -= size }
        s.lastUse[name] = nil
    }
}

/// The local faults of a disk cache: which were logged (each once), whether it stopped using
/// its directory, and a write failure a test injects.
final class LocalFaults: Sendable {
    enum Condition: Hashable, Sendable { case full, notWritable, vanished, ramOnly, writeFailed(Int32) }

    let directory: String
    let logger: Logger
    private let logged = Mutex<Set<Condition>>([])
    private let disabled = Atomic<Bool>(false)
    let injected = Mutex<Int32?>(nil)

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// Whether the cache stopped using its directory.
    var ramOnly: Bool { disabled.load(ordering: .relaxed) }

    /// Logs `message` as a warning the first time `condition` happens.
    func warnOnce(_ condition: Condition, _ message: String) {
        guard logged.withLock({ $0.insert(condition).inserted }) else { return }
        logger.warning("disk cache: \(message)", metadata: ["directory": "\(directory)"])
    }

    /// A block file could not be written (`code` is the `errno`): the write is dropped.
    func writeFailed(_ code: Int32) {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT:
            warnOnce(.full, "the disk is full (\(reason)); pages are not cached on disk until there is room")
        case EACCES, EROFS, EPERM:
            warnOnce(.notWritable, "the cache directory is not writable (\(reason)); pages are not cached on disk")
        default:
            warnOnce(.writeFailed(code), "writing a block file failed (\(reason)); pages are not cached on disk")
        }
    }

    /// The directory cannot be used any more: from now on the cache neither reads nor writes.
    func stopUsingDisk(_ why: String) {
        disabled.store(true, ordering: .relaxed)
        warnOnce(.ramOnly, "\(why); caching in RAM only from now on")
    }
}

/// The error of the `Tiering` module: a cache that cannot be set up.
public struct TieringError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { "TieringError: \(message)" }
}
