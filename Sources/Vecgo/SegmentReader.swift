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

    /// Reads only the probed partitions — each one range of vectors and one of ids, all asked
    /// of the store together so nearby ranges share requests — and checks each partition
    /// against its own checksums.
    private func searchIVF(_ query: [Float], k: Int, nprobe: Int, ivf: IVFLayout, footer f: SegmentFooter,
                           vd: SectionDescriptor, idd: SectionDescriptor) async throws -> [Neighbor] {
        let probe = IVFIndex.probe(query, centroids: ivf.centroids, dimension: f.dimension, metric: metric, nprobe: nprobe)
            .filter { !ivf.rows($0).isEmpty }
        let dim4 = UInt64(f.dimension * 4)
        var ranges: [Range<UInt64>] = []
        for p in probe {
            let rows = ivf.rows(p)
            let lo = UInt64(rows.lowerBound), hi = UInt64(rows.upperBound)
            ranges.append(vd.offset + lo * dim4..<vd.offset + hi * dim4)
            ranges.append(idd.offset + lo * 8..<idd.offset + hi * 8)
        }
        let bytes = try await store.read(ref.name, ranges: ranges)
        var top = TopK(k: k)
        for (i, p) in probe.enumerated() {
            let rows = ivf.rows(p)
            let vr = ranges[2 * i], ir = ranges[2 * i + 1]
            let vectorBytes = bytes[2 * i], idBytes = bytes[2 * i + 1]
            for (got, r, what) in [(vectorBytes, vr, "vectors"), (idBytes, ir, "ids")] where got.count != r.count {
                throw FormatError(.truncated, object: ref.name, offset: r.lowerBound + UInt64(got.count),
                                  "partition \(p) \(what) are cut short")
            }
            try ivf.check(partition: p, vectors: vectorBytes, ids: idBytes, object: ref.name, offset: vr.lowerBound)
            var reader = ByteReader(vectorBytes, object: ref.name, baseOffset: vr.lowerBound)
            var idReader = ByteReader(idBytes, object: ref.name, baseOffset: ir.lowerBound)
            let vectors = try reader.readFloats(rows.count * f.dimension)
            var ids: [UInt64] = []
            ids.reserveCapacity(rows.count)
            for _ in rows { ids.append(try idReader.read(UInt64.self)) }
            vectors.withUnsafeBufferPointer { v in
                FlatSearch.search(query: query, vectors: v, dimension: f.dimension, metric: metric, ids: ids, into: &top)
            }
        }
        return top.sorted()
    }

    /// Brings the whole segment into the cache tiers (and a graph segment's graph into
    /// memory). Returns the bytes it covers.
    func warm() async throws -> UInt64 {
        let t = try await tail()
        if t.footer.section(.hnswGraph) != nil, t.ivf == nil {
            _ = try await graph(t)
        } else if ref.tailOffset > 0 {
            _ = try await read(0..<ref.tailOffset, "segment data")
        }
        return ref.size
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
