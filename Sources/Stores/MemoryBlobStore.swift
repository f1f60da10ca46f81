// MemoryBlobStore, the in-memory reference BlobStore, and the helpers every store shares
// (range clipping, object-name validation).
import Foundation

/// An in-memory ``BlobStore``: the reference implementation, for unit tests and the embedded demo.
public actor MemoryBlobStore: BlobStore {
    private var objects: [String: [UInt8]] = [:]
    private var written: [String: Date] = [:]

    /// Creates an empty store.
    public init() {}

    public func read(_ name: String, range: Range<UInt64>) throws -> [UInt8] {
        guard let bytes = objects[name] else {
            throw StoreError(.notFound, "no object named '\(name)'", object: name)
        }
        return clip(bytes, range)
    }

    public func put(_ name: String, _ bytes: [UInt8]) throws {
        try validateObjectName(name)
        objects[name] = bytes
        written[name] = Date()
    }

    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) throws {
        try validateObjectName(name)
        guard objects[name] == nil else {
            throw StoreError(.alreadyExists, "an object named '\(name)' already exists", object: name)
        }
        objects[name] = bytes
        written[name] = Date()
    }

    public func list(prefix: String, startAfter: String?) -> [ObjectInfo] {
        objects.lazy
            .filter { entry in entry.key.hasPrefix(prefix) && startAfter.map { entry.key > $0 } ?? true }
            .map { ObjectInfo(name: $0.key, size: UInt64($0.value.count), lastModified: self.written[$0.key]) }
            .sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) {
        objects[name] = nil
        written[name] = nil
    }

    public func size(_ name: String) throws -> UInt64 {
        guard let bytes = objects[name] else {
            throw StoreError(.notFound, "no object named '\(name)'", object: name)
        }
        return UInt64(bytes.count)
    }
}

/// The bytes of `range` within `bytes`, clipped to its end (the ``BlobStore/read(_:range:)`` rule).
func clip(_ bytes: [UInt8], _ range: Range<UInt64>) -> [UInt8] {
    let count = UInt64(bytes.count)
    let lo = min(range.lowerBound, count), hi = min(range.upperBound, count)
    if lo == 0 && hi == count { return bytes }
    return Array(bytes[Int(lo)..<Int(hi)])
}

/// Rejects names no store can hold safely: empty, absolute, or with `.`/`..` segments.
func validateObjectName(_ name: String) throws {
    let parts = name.split(separator: "/", omittingEmptySubsequences: false)
    guard !name.isEmpty, !name.hasPrefix("/"),
          !parts.contains(where: { $0 == "." || $0 == ".." || $0.isEmpty }),
          !name.utf8.contains(0) else {
        throw StoreError(.invalidArgument, "'\(name)' is not a valid object name", object: name)
    }
}
