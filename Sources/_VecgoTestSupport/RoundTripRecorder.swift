// A store wrapper that counts sequential round trips (the cold-path budget tests).
public import Stores
import Synchronization

/// Wraps a store, delays each request, and measures how many requests had to happen one after
/// another: a request's depth is one more than the deepest request that had completed when it
/// started. ``depth`` is the deepest since the last ``reset()`` — the sequential round trips.
public final class RoundTripRecorder: BlobStore {
    private let base: any BlobStore
    private let delayNanos: UInt64
    private let state = Mutex<(completed: Int, requests: Int)>((0, 0))

    public init(_ base: any BlobStore, delayMillis: UInt64 = 20) {
        self.base = base
        delayNanos = delayMillis * 1_000_000
    }

    /// Sequential round trips since the last reset.
    public var depth: Int { state.withLock { $0.completed } }
    /// Requests since the last reset.
    public var requests: Int { state.withLock { $0.requests } }

    public func reset() { state.withLock { $0 = (0, 0) } }

    private func track<T>(_ op: () async throws -> T) async throws -> T {
        let startDepth = state.withLock { s -> Int in
            s.requests += 1
            return s.completed
        }
        try await Task.sleep(nanoseconds: delayNanos)
        let r = try await op()
        state.withLock { $0.completed = max($0.completed, startDepth + 1) }
        return r
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        try await track { try await base.read(name, range: range) }
    }
    public func put(_ name: String, _ bytes: [UInt8]) async throws { try await track { try await base.put(name, bytes) } }
    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        try await track { try await base.putIfAbsent(name, bytes) }
    }
    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        try await track { try await base.list(prefix: prefix, startAfter: startAfter) }
    }
    public func delete(_ name: String) async throws { try await track { try await base.delete(name) } }
    public func size(_ name: String) async throws -> UInt64 { try await track { try await base.size(name) } }
}
