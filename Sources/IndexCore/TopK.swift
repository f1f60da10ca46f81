/// Exact top-k selection: the result type of every index (`Neighbor`) and the bounded heap
/// (`TopK`) that keeps the k nearest seen so far.

/// One search result inside the index layer: a row and its distance.
public struct Neighbor: Sendable, Hashable {
    /// The row's key (a primary key or a row number, as the caller chose).
    public var id: UInt64
    /// Distance to the query; smaller is closer.
    public var distance: Float
    public init(id: UInt64, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// The worst of the kept neighbours on top: farther, or equally far with a larger id.
@usableFromInline enum WorstNeighborFirst: HeapOrder {
    @usableFromInline static func before(_ a: Neighbor, _ b: Neighbor) -> Bool { TopK.less(b, a) }
}

/// Keeps the `k` nearest neighbours seen so far in a bounded max-heap: O(log k) per offer, no
/// allocation after creation.
public struct TopK: Sendable {
    /// How many neighbours are kept.
    public let k: Int
    @usableFromInline var heap: BinaryHeap<WorstNeighborFirst>

    public init(k: Int) {
        precondition(k > 0, "k must be positive")
        self.k = k
        heap = BinaryHeap(capacity: k)
    }

    /// The distance a candidate must beat to enter (infinity until `k` are held).
    @inlinable public var threshold: Float { isFull ? worst : .infinity }
    @usableFromInline var isFull: Bool { heap.count == k }
    @usableFromInline var worst: Float { heap.top.distance }

    /// Offers a candidate; kept if it is among the `k` nearest so far. Ties go to the smaller id.
    public mutating func offer(_ n: Neighbor) {
        if heap.count < k {
            heap.push(n)
        } else if Self.less(n, heap.top) {
            heap.replaceTop(n)
        }
    }

    /// The neighbours held, nearest first.
    public func sorted() -> [Neighbor] { heap.items.sorted(by: Self.less) }

    /// Whether `a` ranks before `b`: closer, or equally close with a smaller id.
    public static func less(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.distance < b.distance || (a.distance == b.distance && a.id < b.id)
    }
}
