// Locked: a value behind the standard library's `Mutex`, as a class that can be shared.
import Synchronization

/// A value behind a mutex, as a class so it can live in arrays and be shared across the
/// package's modules.
package final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    package init(_ value: sending Value) { mutex = Mutex(value) }
    package func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
        try mutex.withLock(body)
    }
}
