// AtomicCounter: a shared integer counter over the standard library's `Atomic`.
import Synchronization

/// A thread-safe integer counter shared across the package's modules (request counts, queue depths).
package final class AtomicCounter: Sendable {
    private let count = Atomic<Int>(0)
    package init() {}
    package func add(_ n: Int) { count.add(n, ordering: .relaxed) }
    package func increment() { add(1) }
    package var value: Int { count.load(ordering: .relaxed) }
}
