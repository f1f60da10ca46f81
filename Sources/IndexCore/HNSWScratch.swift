/// The working memory of one HNSW search (visited marks with generation tags, candidate and
/// result heaps of the C walk), owned by a Swift class and pooled per index.
internal import CVecgoNative
import Synchronization

/// Owns one `vecgo_hnsw_scratch`; used by one search at a time.
final class SearchScratch: @unchecked Sendable {
    let raw: UnsafeMutablePointer<vecgo_hnsw_scratch>

    init() {
        guard let s = vecgo_hnsw_scratch_new() else { fatalError("out of memory allocating an HNSW search scratch") }
        raw = s
    }

    deinit { vecgo_hnsw_scratch_free(raw) }

    /// Starts a walk over `nodes` nodes with room for `ef` results: a new visited generation.
    func begin(nodes: Int, ef: Int, degree: Int) {
        precondition(vecgo_hnsw_scratch_begin(raw, nodes, ef, degree) != 0, "out of memory in an HNSW search")
    }

    /// Marks node `i` visited; true when it was not yet.
    @inline(__always) func visit(_ i: UInt32) -> Bool {
        let marks = raw.pointee.marks!
        let g = raw.pointee.generation
        if marks[Int(i)] == g { return false }
        marks[Int(i)] = g
        return true
    }
}

/// Scratches returned by finished searches, for the next ones.
struct ScratchPool: ~Copyable {
    private let free = Mutex<[SearchScratch]>([])

    func take() -> SearchScratch { free.withLock { $0.popLast() } ?? SearchScratch() }
    func give(_ s: SearchScratch) { free.withLock { $0.append(s) } }
}
