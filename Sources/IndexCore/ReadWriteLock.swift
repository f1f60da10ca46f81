/// A pthread readers-writer lock: many concurrent searches, one writer (HNSW inserts).
import Foundation

/// A pthread readers-writer lock.
final class ReadWriteLock: @unchecked Sendable {
    /// Allocated once: a pthread lock must not move, and `&` on a stored property does not
    /// promise a stable address.
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>
    init() {
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }
    deinit {
        pthread_rwlock_destroy(rw)
        rw.deinitialize(count: 1)
        rw.deallocate()
    }
    func read<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
    func write<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
}
