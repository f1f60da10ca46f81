import IndexCore
import SegmentFormat
import Stores

/// How far a search looks: the HNSW candidate list and the IVF partitions probed.
public struct SearchOptions: Sendable, Hashable {
    /// HNSW candidate list size (at least `k` is used).
    public var ef: Int
    /// IVF partitions probed per segment.
    public var nprobe: Int
    public init(ef: Int = 64, nprobe: Int = 8) {
        self.ef = ef
        self.nprobe = nprobe
    }
}

/// A committed segment seen by a reader: its manifest entry, its tail once read (footer, IVF
/// centroids), and its data read through the cache stack. A graph segment's graph is loaded
/// once and kept (warm data); flat and IVF data is re-read from the block cache per query.
final class SegmentReader: Sendable {
    let ref: SegmentRef
    let store: any BlobStore
    let metric: Metric
    private let tailTask = Locked<Task<SegmentTail, any Error>?>(nil)
    private let graphTask = Locked<Task<HNSWIndex, any Error>?>(nil)

    init(ref: SegmentRef, store: any BlobStore, metric: Metric) {
        self.ref = ref
        self.store = store
        self.metric = metric
    }

    /// Runs `make` once and shares its result; a failure is not kept, so a later call retries.
    private static func once<T: Sendable>(_ slot: Locked<Task<T, any Error>?>, _ make: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = slot.withLock { t -> Task<T, any Error> in
            if let t { return t }
            let new = Task { try await make() }
            t = new
            return new
        }
        do {
            return try await task.value
        } catch {
            slot.withLock { $0 = nil }
            throw error
        }
    }

    /// The tail (footer, IVF sections), read once with one ranged read at the place the manifest gives.
    func tail() async throws -> SegmentTail {
        let ref = self.ref, store = self.store
        return try await Self.once(tailTask) {
            let bytes = try await store.read(ref.name, range: ref.tailOffset..<ref.size)
            return try SegmentTail.decode(bytes, tailOffset: ref.tailOffset, objectSize: ref.size, object: ref.name)
        }
    }

    private func read(_ range: Range<UInt64>, _ what: String) async throws -> [UInt8] {
        let bytes = try await store.read(ref.name, range: range)
        guard bytes.count == Int(range.upperBound - range.lowerBound) else {
            throw FormatError(.truncated, object: ref.name, offset: range.lowerBound + UInt64(bytes.count), "\(what) is cut short")
        }
        return bytes
    }

    /// The top `k` rows of this segment for `query`.
    func search(_ query: [Float], k: Int, options: SearchOptions) async throws -> [Neighbor] {
        let t = try await tail()
        let f = t.footer
        guard f.rowCount > 0, let vd = f.section(.vectors), let idd = f.section(.ids) else { return [] }
        if let ivf = t.ivf { return try await searchIVF(query, k: k, nprobe: options.nprobe, ivf: ivf, footer: f, vd: vd, idd: idd) }
        if f.section(.hnswGraph) != nil {
            return try await graph(t).search(query, k: k, ef: max(options.ef, k))
        }
        async let vectorBytes = read(vd.range, "vector section")
        async let idBytes = read(idd.range, "id section")
        let vectors = try SegmentCodec.decodeVectors(try await vectorBytes, vd, footer: f, object: ref.name)
        let ids = try SegmentCodec.decodeIDs(try await idBytes, idd, footer: f, object: ref.name)
        var top = TopK(k: k)
        vectors.withUnsafeBufferPointer { v in
            FlatSearch.search(query: query, vectors: v, dimension: f.dimension, metric: metric, ids: ids, into: &top)
        }
        return top.sorted()
    }

    /// Reads only the probed partitions: each one range of vectors and one of ids, in parallel,
    /// each checked against its own checksums.
    private func searchIVF(_ query: [Float], k: Int, nprobe: Int, ivf: IVFLayout, footer f: SegmentFooter,
                           vd: SectionDescriptor, idd: SectionDescriptor) async throws -> [Neighbor] {
        let probe = IVFIndex.probe(query, centroids: ivf.centroids, dimension: f.dimension, metric: metric, nprobe: nprobe)
        let dim4 = UInt64(f.dimension * 4)
        let parts = try await withThrowingTaskGroup(of: (Int, [Float], [UInt64]).self) { group in
            for p in probe {
                let rows = ivf.rows(p)
                guard !rows.isEmpty else { continue }
                let lo = UInt64(rows.lowerBound), hi = UInt64(rows.upperBound)
                group.addTask {
                    async let vb = self.read(vd.offset + lo * dim4..<vd.offset + hi * dim4, "partition \(p) vectors")
                    async let ib = self.read(idd.offset + lo * 8..<idd.offset + hi * 8, "partition \(p) ids")
                    let (vectorBytes, idBytes) = try await (vb, ib)
                    try ivf.check(partition: p, vectors: vectorBytes, ids: idBytes, object: self.ref.name,
                                  offset: vd.offset + lo * dim4)
                    var vr = ByteReader(vectorBytes, object: self.ref.name, baseOffset: vd.offset + lo * dim4)
                    var ir = ByteReader(idBytes, object: self.ref.name, baseOffset: idd.offset + lo * 8)
                    let vectors = try vr.readFloats(rows.count * f.dimension)
                    var ids: [UInt64] = []
                    ids.reserveCapacity(rows.count)
                    for _ in rows { ids.append(try ir.read(UInt64.self)) }
                    return (p, vectors, ids)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var top = TopK(k: k)
        for (_, vectors, ids) in parts {
            vectors.withUnsafeBufferPointer { v in
                FlatSearch.search(query: query, vectors: v, dimension: f.dimension, metric: metric, ids: ids, into: &top)
            }
        }
        return top.sorted()
    }

    /// The segment's graph with its vectors, loaded once and kept.
    private func graph(_ t: SegmentTail) async throws -> HNSWIndex {
        let ref = self.ref, metric = self.metric
        return try await Self.once(graphTask) {
            let f = t.footer
            guard let vd = f.section(.vectors), let idd = f.section(.ids), let gd = f.section(.hnswGraph) else {
                throw FormatError(.corrupted, object: ref.name, offset: ref.tailOffset, "graph segment lacks a section")
            }
            async let vb = self.read(vd.range, "vector section")
            async let ib = self.read(idd.range, "id section")
            async let gb = self.read(gd.range, "graph section")
            let vectors = try SegmentCodec.decodeVectors(try await vb, vd, footer: f, object: ref.name)
            let ids = try SegmentCodec.decodeIDs(try await ib, idd, footer: f, object: ref.name)
            let g = try SegmentCodec.decodeGraph(try await gb, gd, footer: f, object: ref.name)
            return HNSWIndex(dimension: f.dimension, metric: metric, parameters: .init(m: g.m), vectors: vectors, ids: ids,
                             graph: HNSWGraph(m: g.m, entryPoint: g.entryPoint, maxLevel: g.maxLevel, levels: g.levels,
                                              level0: g.level0, upper: g.upper))
        }
    }
}
