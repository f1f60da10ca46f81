// LocalDirectoryStore: a BlobStore on a local directory (atomic renames, fsync of files and
// directory).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A ``BlobStore`` on a local directory: each object is a file under the root.
///
/// Writes go to a temporary file that is fsynced and then published atomically: `put` renames
/// it over the target, `putIfAbsent` hard-links it to the target name (which fails if the name
/// exists, so exactly one of several racing writers wins) — then the directory is fsynced. A
/// failed fsync (of the file or the directory) fails the write with `.io`: the object may then
/// exist but is not known to survive a crash.
public struct LocalDirectoryStore: BlobStore {
    /// The directory holding the objects.
    public let root: String
    /// `fsync(2)`, or a stand-in that fails (tests).
    private let sync: @Sendable (Int32) -> Int32

    /// Opens (creating if needed) a store rooted at `root`.
    ///
    /// - Throws: ``StoreError`` `.io` when the directory cannot be created.
    public init(root: String) throws {
        try self.init(root: root, fsync: { fsync($0) })
    }

    /// A store whose fsync calls go to `fsync` (returning 0, or -1 with `errno` set), so a
    /// test can make them fail.
    @_spi(Testing) public init(root: String, fsync: @escaping @Sendable (Int32) -> Int32) throws {
        sync = fsync
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        do {
            try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.io, "cannot create directory '\(root)': \(error)")
        }
    }

    private func path(_ name: String) throws -> String {
        try validateObjectName(name)
        return root + "/" + name
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        let p = try path(name)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError(name, "open") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw posixError(name, "stat") }
        let size = UInt64(st.st_size)
        let lo = min(range.lowerBound, size), hi = min(range.upperBound, size)
        var out = [UInt8](repeating: 0, count: Int(hi - lo))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { buf in
                pread(fd, buf.baseAddress! + done, buf.count - done, off_t(lo) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw posixError(name, "read") }
            done += n
        }
        return out
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        let target = try path(name)
        let tmp = try writeTemporary(name, bytes)
        guard rename(tmp, target) == 0 else {
            let e = posixError(name, "rename")
            unlink(tmp)
            throw e
        }
        try syncDirectory(of: target, name)
    }

    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        let target = try path(name)
        let tmp = try writeTemporary(name, bytes)
        defer { unlink(tmp) }
        guard link(tmp, target) == 0 else {
            if errno == EEXIST {
                throw StoreError(.alreadyExists, "an object named '\(name)' already exists", object: name)
            }
            throw posixError(name, "link")
        }
        try syncDirectory(of: target, name)
    }

    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        var result: [ObjectInfo] = []
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root) else { return [] }
        while let rel = walker.nextObject() as? String {
            guard rel.hasPrefix(prefix), !rel.contains(".tmp-") else { continue }
            if let startAfter, rel <= startAfter { continue }
            var st = stat()
            guard stat(root + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            result.append(ObjectInfo(name: rel, size: UInt64(st.st_size),
                                     lastModified: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)))
        }
        return result.sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) async throws {
        let p = try path(name)
        if unlink(p) != 0 && errno != ENOENT { throw posixError(name, "unlink") }
    }

    public func size(_ name: String) async throws -> UInt64 {
        var st = stat()
        guard stat(try path(name), &st) == 0 else { throw posixError(name, "stat") }
        return UInt64(st.st_size)
    }

    /// Writes `bytes` to a fresh temporary file beside the target and fsyncs it.
    private func writeTemporary(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = try path(name)
        let dir = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.io, "cannot create directory for '\(name)': \(error)", object: name)
        }
        let tmp = "\(dir)/.tmp-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError(name, "create temporary file for") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = posixError(name, "write")
                unlink(tmp)
                throw e
            }
            done += n
        }
        guard sync(fd) == 0 else {
            let e = posixError(name, "fsync")
            unlink(tmp)
            throw e
        }
        return tmp
    }

    /// Fsyncs the directory holding `file`, so its new name survives a crash.
    ///
    /// - Throws: ``StoreError`` `.io` when the directory cannot be opened or synced.
    private func syncDirectory(of file: String, _ name: String) throws {
        let dir = (file as NSString).deletingLastPathComponent
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError(name, "open the directory of") }
        defer { close(fd) }
        guard sync(fd) == 0 else {
            let code = errno
            throw StoreError(.io, "cannot fsync the directory '\(dir)' after writing '\(name)': \(String(cString: strerror(code))); the object may exist but is not known to survive a crash, so write it again",
                             object: name)
        }
    }

    private func posixError(_ name: String, _ op: String) -> StoreError {
        let code = errno
        let text = String(cString: strerror(code))
        if code == ENOENT {
            return StoreError(.notFound, "no object named '\(name)'", object: name)
        }
        return StoreError(.io, "cannot \(op) '\(name)' under '\(root)': \(text)", object: name)
    }
}
