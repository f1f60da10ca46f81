// A store that forwards to another and lets a test count, fail or change what passes through.
public import Stores

/// A store that forwards every call to another and lets a test step in: count calls, fail
/// them, or change what a listing says. Hooks run before the call unless named `after…`.
public final class InterceptingStore: BlobStore {
    /// What kind of write a hook sees.
    public enum Write: Sendable { case put, putIfAbsent, delete }

    /// The store every call reaches.
    public let base: any BlobStore
    private let onRead: @Sendable (String) throws -> Void
    private let onWrite: @Sendable (String, Write) throws -> Void
    private let afterPutIfAbsent: @Sendable (String) throws -> Void
    private let beforePutIfAbsent: @Sendable (String) async throws -> Void
    private let onList: @Sendable ([ObjectInfo]) -> [ObjectInfo]
    private let afterRead: @Sendable (String, Range<UInt64>, [UInt8]) -> [UInt8]
    private let onSize: @Sendable (String) throws -> Void

    public init(_ base: any BlobStore = MemoryBlobStore(),
                onRead: @escaping @Sendable (String) throws -> Void = { _ in },
                onWrite: @escaping @Sendable (String, Write) throws -> Void = { _, _ in },
                afterPutIfAbsent: @escaping @Sendable (String) throws -> Void = { _ in },
                beforePutIfAbsent: @escaping @Sendable (String) async throws -> Void = { _ in },
                onList: @escaping @Sendable ([ObjectInfo]) -> [ObjectInfo] = { $0 },
                afterRead: @escaping @Sendable (_ name: String, _ range: Range<UInt64>, _ body: [UInt8]) -> [UInt8] = { $2 },
                onSize: @escaping @Sendable (String) throws -> Void = { _ in }) {
        self.base = base
        self.onRead = onRead
        self.onWrite = onWrite
        self.afterPutIfAbsent = afterPutIfAbsent
        self.beforePutIfAbsent = beforePutIfAbsent
        self.onList = onList
        self.afterRead = afterRead
        self.onSize = onSize
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        try onRead(name)
        return afterRead(name, range, try await base.read(name, range: range))
    }
    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        try onWrite(name, .put)
        try await base.put(name, bytes)
    }
    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        try onWrite(name, .putIfAbsent)
        try await beforePutIfAbsent(name)
        try await base.putIfAbsent(name, bytes)
        try afterPutIfAbsent(name)
    }
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        onList(try await base.list(prefix: prefix, startAfter: startAfter))
    }
    public func delete(_ name: String) async throws {
        try onWrite(name, .delete)
        try await base.delete(name)
    }
    public func size(_ name: String) async throws -> UInt64 {
        try onSize(name)
        return try await base.size(name)
    }
}
