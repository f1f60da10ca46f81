// LatencyInjectingStore: a wrapper that delays every request like a remote store and counts them.
/// Wraps a store and delays every request like a remote object store would: a fixed time to
/// first byte plus transfer time at a given bandwidth. It makes cache tiers visible on a
/// local store (the embedded demo) and keeps a count of the requests that reached it.
public final class LatencyInjectingStore: BlobStore {
    /// A latency model of one kind of object store.
    public struct Profile: Sendable, Hashable {
        /// Time to first byte of a request, in microseconds.
        public var firstByteMicros: UInt64
        /// Bandwidth of one request's transfer, in bytes per second.
        public var bytesPerSecond: UInt64

        public init(firstByteMicros: UInt64, bytesPerSecond: UInt64) {
            self.firstByteMicros = firstByteMicros
            self.bytesPerSecond = bytesPerSecond
        }

        /// S3 Standard seen from the same region: ~30 ms to first byte, ~90 MB/s per request.
        public static let s3Standard = Profile(firstByteMicros: 30_000, bytesPerSecond: 90_000_000)
        /// S3 Express One Zone: ~2 ms to first byte, ~200 MB/s per request.
        public static let s3Express = Profile(firstByteMicros: 2_000, bytesPerSecond: 200_000_000)
        /// No added latency.
        public static let none = Profile(firstByteMicros: 0, bytesPerSecond: 0)

        /// Looks up a profile by its command-line name: `s3-standard`, `s3-express` or `none`.
        public init?(named name: String) {
            switch name {
            case "s3-standard": self = .s3Standard
            case "s3-express": self = .s3Express
            case "none": self = .none
            default: return nil
            }
        }

        func delay(bytes: Int) -> UInt64 {
            let transfer = bytesPerSecond == 0 ? 0 : UInt64(bytes) * 1_000_000 / bytesPerSecond
            return firstByteMicros + transfer
        }
    }

    /// The wrapped store.
    public let base: any BlobStore
    /// The latency model applied to every request.
    public let profile: Profile
    private let counter = AtomicCounter()

    /// Wraps `base`, delaying each request according to `profile`.
    public init(_ base: any BlobStore, profile: Profile) {
        self.base = base
        self.profile = profile
    }

    /// Requests that reached this store (and so the store behind it) so far.
    public var requestCount: Int { counter.value }

    private func wait(_ bytes: Int) async throws {
        counter.increment()
        let micros = profile.delay(bytes: bytes)
        if micros > 0 { try await Task.sleep(nanoseconds: micros * 1_000) }
    }

    public func read(_ name: String, range: Range<UInt64>) async throws -> [UInt8] {
        let bytes = try await base.read(name, range: range)
        try await wait(bytes.count)
        return bytes
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        try await wait(bytes.count)
        try await base.put(name, bytes)
    }

    public func putIfAbsent(_ name: String, _ bytes: [UInt8]) async throws {
        try await wait(bytes.count)
        try await base.putIfAbsent(name, bytes)
    }

    public func list(prefix: String, startAfter: String?) async throws -> [ObjectInfo] {
        try await wait(0)
        return try await base.list(prefix: prefix, startAfter: startAfter)
    }

    public func delete(_ name: String) async throws {
        try await wait(0)
        try await base.delete(name)
    }

    public func size(_ name: String) async throws -> UInt64 {
        try await wait(0)
        return try await base.size(name)
    }
}
