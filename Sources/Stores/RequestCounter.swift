import Synchronization

/// A thread-safe counter of requests, shared by the stores that report how many they made.
package final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)
    package init() {}
    package func increment() { count.add(1, ordering: .relaxed) }
    package var value: Int { count.load(ordering: .relaxed) }
}
