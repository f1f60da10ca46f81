import Foundation
import Stores
internal import CVecgoNative
#if canImport(Glibc)
import Glibc
#endif

/// The L2 tier: large blocks kept as files in a directory that outlives the process.
///
/// - Each block is one file named by a hash of its object name and block index, so no object
///   name can reach outside the directory. The file holds a header with the full object name,
///   the block index, the length and one CRC32C per 4 KiB page of data; a read fetches only the
///   header and the pages it needs and checks them, and a damaged or truncated file is deleted
///   and reported as a miss (then refetched).
/// - Writes happen off the query path: ``enqueue(_:_:)`` hands the block to one background
///   writer through a bounded queue, dropping (and counting) blocks when the queue is full, so a
///   slow disk never slows a query. Files are written to a temporary name and renamed, so a
///   reader, in this process or another, never sees half a file.
/// - A restarted process finds the blocks by name: the directory is the index.
/// - The total size stays under `capacityBytes`: the least recently used files are removed,
///   under an exclusive `flock` on the directory's lock file so two processes do not race.
public final class DiskCache: Sendable {
    /// The directory holding the block files.
    public let directory: String
    /// The size of one block in bytes.
    public let blockSize: Int
    /// The size limit of all block files together.
    public let capacityBytes: Int
    /// The counters this cache updates.
    public let stats: TierStats
    private let state: Locked<IndexState>
    private let queue: AsyncStream<Job>.Continuation
    private let pending: AtomicCounter
    private let worker: Task<Void, Never>

    struct IndexState {
        var sizes: [String: Int] = [:]
        var lastUse: [String: UInt64] = [:]
        var clock: UInt64 = 0
        var total = 0
    }

    enum Job: Sendable {
        case write(BlockKey, [UInt8])
    }

    static let magic: [UInt8] = Array("VGCBLK02".utf8)  // 01 files (one CRC per block) read as damaged and are replaced
    static let fileSuffix = ".vgc"

    /// Opens (creating if needed) a disk cache in `directory`.
    ///
    /// - Parameters:
    ///   - capacityBytes: the most bytes of block files kept.
    ///   - blockSize: the size of one block (4 MiB by default).
    ///   - queueDepth: blocks that may wait to be written before new ones are dropped.
    /// - Throws: ``TieringError`` when the directory cannot be created.
    public init(directory: String, capacityBytes: Int, blockSize: Int = 4 << 20, queueDepth: Int = 32,
                stats: TierStats = TierStats()) throws {
        self.directory = directory
        self.blockSize = blockSize
        self.capacityBytes = capacityBytes
        self.stats = stats
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
            s.sizes[name] = Int(st.st_size)
            s.lastUse[name] = UInt64(st.st_mtim.tv_sec)  // older files first in line for eviction
            s.total += Int(st.st_size)
        }
        s.clock = s.lastUse.values.max() ?? 0
        let state = Locked(s)
        self.state = state
        let (stream, continuation) = AsyncStream<Job>.makeStream(bufferingPolicy: .bufferingOldest(queueDepth))
        self.queue = continuation
        let pending = AtomicCounter()
        self.pending = pending
        let dir = directory, cap = capacityBytes
        self.worker = Task.detached(priority: .utility) { [stats] in
            for await job in stream {
                switch job {
                case .write(let key, let bytes):
                    DiskCache.writeBlock(dir: dir, key: key, bytes: bytes, state: state, capacity: cap, stats: stats)
                }
                pending.add(-1)
            }
        }
    }

    deinit {
        queue.finish()
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

    /// The block's bytes when a valid file for it exists; nil otherwise (a damaged file is removed).
    public func get(_ key: BlockKey) -> [UInt8]? {
        get(key, range: 0..<blockSize)
    }

    /// The bytes of `range` within the block (clipped to the block's length) when a valid file
    /// for it exists; nil otherwise. Only the header and the pages that `range` touches are
    /// read, and each of them is checked against its CRC, so a small read stays small. A
    /// damaged or truncated file is removed and counted, never served.
    public func get(_ key: BlockKey, range: Range<Int>) -> [UInt8]? {
        let name = Self.fileName(key)
        let known = state.withLock { s -> Bool in
            guard s.sizes[name] != nil else { return false }
            s.clock += 1
            s.lastUse[name] = s.clock
            return true
        }
        guard known else {
            stats.disk(hit: false)
            return nil
        }
        let path = directory + "/" + name
        let start = ContinuousClock.now
        switch Self.readBlock(path: path, key: key, range: range, blockSize: blockSize) {
        case .ok(let bytes):
            stats.disk(hit: true, bytes: bytes.count, nanos: start.elapsedNanos)
            return bytes
        case .missing:
            state.withLock { s in Self.forget(name, &s) }
            stats.disk(hit: false)
            return nil
        case .damaged:
            unlink(path)
            state.withLock { s in Self.forget(name, &s) }
            stats.diskCorrupt.bump()
            stats.disk(hit: false)
            return nil
        }
    }

    /// Queues a block to be written in the background; drops it when the queue is full.
    public func enqueue(_ key: BlockKey, _ bytes: [UInt8]) {
        pending.increment()
        if case .dropped = queue.yield(.write(key, bytes)) {
            pending.add(-1)
            stats.diskDropped.bump()
        }
    }

    /// Waits until every queued block has been written.
    public func flush() async {
        while pending.value > 0 {
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    /// Bytes of block files this process knows of.
    public var bytesUsed: Int { state.withLock { $0.total } }

    // MARK: files

    enum ReadResult { case ok([UInt8]), missing, damaged }

    /// The checked unit of a block file: each page of data has its own CRC32C.
    static let pageSize = 4096
    /// Bytes of the fixed part of the header: magic, name length, data length, block index, page size.
    static let fixedHeader = 28

    /// A block file: the fixed header, the object name, one CRC32C per page of data, a CRC32C
    /// of everything before it, then the data.
    static func encodeFile(_ key: BlockKey, _ bytes: [UInt8]) -> [UInt8] {
        let name = Array(key.object.utf8)
        let pages = (bytes.count + pageSize - 1) / pageSize
        var out: [UInt8] = []
        out.reserveCapacity(fixedHeader + name.count + 4 * pages + 4 + bytes.count)
        out += magic
        appendLE(&out, UInt32(name.count))
        appendLE(&out, UInt32(bytes.count))
        appendLE(&out, key.index)
        appendLE(&out, UInt32(pageSize))
        out += name
        bytes.withUnsafeBytes { raw in
            for p in 0..<pages {
                let lo = p * pageSize, hi = min(lo + pageSize, raw.count)
                appendLE(&out, vecgo_crc32c(0, raw.baseAddress! + lo, hi - lo))
            }
        }
        appendLE(&out, out.withUnsafeBytes { vecgo_crc32c(0, $0.baseAddress, $0.count) })
        out += bytes
        return out
    }

    /// Reads `range` of a block file with two `pread`s (header, then the touched pages).
    static func readBlock(path: String, key: BlockKey, range: Range<Int>, blockSize: Int) -> ReadResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .missing }
        defer { close(fd) }
        // The header's length depends only on the name and the data length (≤ the block size).
        let nameCount = key.object.utf8.count
        let maxHeader = fixedHeader + nameCount + 4 * ((blockSize + pageSize - 1) / pageSize) + 4
        guard let head = readFully(fd, offset: 0, count: maxHeader, allowShort: true), head.count >= fixedHeader + 4
        else { return .damaged }
        guard head[0..<8].elementsEqual(magic) else { return .damaged }
        let nameLen = Int(readLE(head, 8, UInt32.self)), dataLen = Int(readLE(head, 12, UInt32.self))
        let index = readLE(head, 16, UInt64.self), page = Int(readLE(head, 24, UInt32.self))
        guard page == pageSize, dataLen <= blockSize else { return .damaged }
        let pages = (dataLen + pageSize - 1) / pageSize
        let headerEnd = fixedHeader + nameLen + 4 * pages
        guard nameLen == nameCount, headerEnd + 4 <= head.count else { return nameLen == nameCount ? .damaged : .missing }
        let headerCRC = readLE(head, headerEnd, UInt32.self)
        guard headerCRC == head.withUnsafeBytes({ vecgo_crc32c(0, $0.baseAddress, headerEnd) }) else { return .damaged }
        // A different object that hashes alike is a miss, not damage.
        guard index == key.index, head[fixedHeader..<(fixedHeader + nameLen)].elementsEqual(key.object.utf8) else {
            return .missing
        }
        let lo = min(max(range.lowerBound, 0), dataLen), hi = min(max(range.upperBound, lo), dataLen)
        guard lo < hi else { return .ok([]) }
        let firstPage = lo / pageSize, lastPage = (hi - 1) / pageSize
        let readLo = firstPage * pageSize, readHi = min((lastPage + 1) * pageSize, dataLen)
        guard let data = readFully(fd, offset: headerEnd + 4 + readLo, count: readHi - readLo, allowShort: false) else {
            return .damaged
        }
        let ok = data.withUnsafeBytes { raw -> Bool in
            for p in firstPage...lastPage {
                let plo = p * pageSize - readLo, phi = min(plo + pageSize, raw.count)
                let expected = readLE(head, fixedHeader + nameLen + 4 * p, UInt32.self)
                if vecgo_crc32c(0, raw.baseAddress! + plo, phi - plo) != expected { return false }
            }
            return true
        }
        guard ok else { return .damaged }
        if lo == readLo && hi == readHi { return .ok(data) }
        return .ok(Array(data[(lo - readLo)..<(hi - readLo)]))
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

    static func writeBlock(dir: String, key: BlockKey, bytes: [UInt8], state: Locked<IndexState>,
                           capacity: Int, stats: TierStats) {
        let name = fileName(key)
        let file = encodeFile(key, bytes)
        guard file.count <= capacity else { return }
        let tmp = "\(dir)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        var done = 0
        while done < file.count {
            let n = file.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        close(fd)
        guard done == file.count, rename(tmp, dir + "/" + name) == 0 else {
            unlink(tmp)
            return
        }
        stats.diskWrites.bump()
        let victims = state.withLock { s -> [String] in
            s.total += file.count - (s.sizes[name] ?? 0)
            s.sizes[name] = file.count
            s.clock += 1
            s.lastUse[name] = s.clock
            var victims: [String] = []
            while s.total > capacity, let oldest = s.lastUse.min(by: { $0.value < $1.value })?.key, oldest != name {
                victims.append(oldest)
                forget(oldest, &s)
            }
            return victims
        }
        guard !victims.isEmpty else { return }
        let lock = open(dir + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if lock >= 0 { flock(lock, LOCK_EX) }
        for v in victims { unlink(dir + "/" + v) }
        if lock >= 0 { flock(lock, LOCK_UN); close(lock) }
        stats.diskEvictions.bump(victims.count)
    }

    static func forget(_ name: String, _ s: inout IndexState) {
        if let size = s.sizes.removeValue(forKey: name) { s.total -= size }
        s.lastUse[name] = nil
    }
}

func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, _: T.Type) -> T {
    var v: T = 0
    withUnsafeMutableBytes(of: &v) { dst in
        for i in 0..<dst.count { dst[i] = bytes[at + i] }
    }
    return T(littleEndian: v)
}

/// The error of the `Tiering` module: a cache that cannot be set up.
public struct TieringError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "TieringError: \(message)" }
}
