/// HNSW persistence: the graph's links as a segment stores them (`HNSWGraph`, the byte layout
/// of spec/format.md's graph section), exported from and loaded into an `HNSWIndex`, whose
/// in-memory layout (vector and level-0 links in one block per node) is converted at load time.

/// A graph's links, node `i` being the `i`-th inserted row: what a segment stores so a reader
/// loads the graph without rebuilding it.
public struct HNSWGraph: Sendable, Equatable {
    /// Links per node on upper levels (level 0 holds up to `2m`).
    public var m: Int
    /// The entry node.
    public var entryPoint: UInt32
    /// The top level (−1 when empty).
    public var maxLevel: Int
    /// Each node's level.
    public var levels: [UInt8]
    /// Level-0 links: per node `2m + 1` slots, a count then the neighbours.
    public var level0: [UInt32]
    /// Upper links of each node: `level × (m + 1)` slots.
    public var upper: [[UInt32]]

    public init(m: Int, entryPoint: UInt32, maxLevel: Int, levels: [UInt8], level0: [UInt32], upper: [[UInt32]]) {
        self.m = m
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.levels = levels
        self.level0 = level0
        self.upper = upper
    }
}

extension HNSWIndex {
    /// The graph's links, for storing beside the vectors.
    public func exportGraph() -> HNSWGraph {
        lock.read {
            HNSWGraph(m: m, entryPoint: entryPoint, maxLevel: maxLevel, levels: levels, level0: exportLevel0(),
                      upper: upper)
        }
    }

    /// Rebuilds an index from stored vectors, ids and links without running inserts.
    ///
    /// The caller has checked the graph (every link in range, counts within `2m`/`m`), as the
    /// segment decoder does.
    public convenience init(dimension: Int, metric: Metric, parameters: Parameters, vectors: [Float], ids: [UInt64],
                            graph: HNSWGraph) {
        var p = parameters
        p.m = graph.m
        self.init(dimension: dimension, metric: metric, parameters: p)
        precondition(vectors.count == ids.count * dimension && graph.levels.count == ids.count
                     && graph.level0.count == ids.count * (2 * graph.m + 1))
        load(vectors: vectors, ids: ids, graph: graph)
    }
}
