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

/// Keeps the `k` nearest neighbours seen so far in a bounded max-heap: O(log k) per offer, no
/// allocation after creation.
public struct TopK: Sendable {
    /// How many neighbours are kept.
    public let k: Int
    private var heap: [Neighbor]

    public init(k: Int) {
        precondition(k > 0, "k must be positive")
        self.k = k
        heap = []
        heap.reserveCapacity(k)
    }

    /// The distance a candidate must beat to enter (infinity until `k` are held).
    @inlinable public var threshold: Float { isFull ? worst : .infinity }
    @usableFromInline var isFull: Bool { heap.count == k }
    @usableFromInline var worst: Float { heap[0].distance }

    /// Offers a candidate; kept if it is among the `k` nearest so far. Ties go to the smaller id.
    public mutating func offer(_ n: Neighbor) {
        if heap.count < k {
            heap.append(n)
            siftUp(heap.count - 1)
        } else if Self.less(n, heap[0]) {
            heap[0] = n
            siftDown(0)
        }
    }

    /// The neighbours held, nearest first.
    public func sorted() -> [Neighbor] { heap.sorted(by: Self.less) }

    /// Whether `a` ranks before `b`: closer, or equally close with a smaller id.
    public static func less(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.distance < b.distance || (a.distance == b.distance && a.id < b.id)
    }

    private mutating func siftUp(_ i: Int) {
        var i = i
        while i > 0 {
            let p = (i - 1) / 2
            guard Self.less(heap[p], heap[i]) else { return }
            heap.swapAt(p, i)
            i = p
        }
    }

    private mutating func siftDown(_ i: Int) {
        var i = i
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && Self.less(heap[m], heap[l]) { m = l }
            if r < heap.count && Self.less(heap[m], heap[r]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
