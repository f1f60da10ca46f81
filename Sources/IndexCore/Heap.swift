/// The one binary heap of IndexCore: an array-backed heap whose order is a type, so each use
/// (nearest-first candidates, farthest-first results, the worst of a top-k on top) is a
/// specialisation of the same code with no closure call per comparison.

/// How a ``BinaryHeap`` orders its elements: `before(a, b)` when `a` belongs nearer the top.
@usableFromInline protocol HeapOrder {
    associatedtype Element
    static func before(_ a: Element, _ b: Element) -> Bool
}

/// An array-backed binary heap with the element that comes first under `Order` on top.
@usableFromInline struct BinaryHeap<Order: HeapOrder> {
    @usableFromInline typealias Element = Order.Element
    @usableFromInline private(set) var items: [Element] = []

    @usableFromInline init(capacity: Int) { items.reserveCapacity(capacity) }

    @usableFromInline var count: Int { items.count }
    @usableFromInline var isEmpty: Bool { items.isEmpty }
    /// The first element under `Order`; the heap must not be empty.
    @usableFromInline var top: Element { items[0] }

    @usableFromInline mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    @usableFromInline mutating func push(_ x: Element) {
        items.append(x)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) >> 1
                guard Order.before(x, h[p]) else { break }
                h[i] = h[p]
                i = p
            }
            h[i] = x
        }
    }

    /// Removes and returns the top element (nil when empty).
    @usableFromInline @discardableResult mutating func pop() -> Element? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        siftDown(last)
        return top
    }

    /// Replaces the top element by `x` (cheaper than a pop then a push).
    @usableFromInline mutating func replaceTop(_ x: Element) { siftDown(x) }

    private mutating func siftDown(_ x: Element) {
        items.withUnsafeMutableBufferPointer { h in
            let n = h.count
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                let c = l + 1 < n && Order.before(h[l + 1], h[l]) ? l + 1 : l
                guard Order.before(h[c], x) else { break }
                h[i] = h[c]
                i = c
            }
            h[i] = x
        }
    }
}

extension BinaryHeap: Sendable where Order.Element: Sendable {}
