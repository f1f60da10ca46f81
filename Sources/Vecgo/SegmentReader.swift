// Reading one committed segment for a search: its tail, IVF codes and partitions, graph or
// flat rows, each read through the cache tiers with its checksum checked (bytes that fail are
// dropped from the tiers and read once more from the store, ``CachingStore/readChecked(_:ranges:_:)``).
import IndexCore
import SegmentFormat
import Stores
import Synchronization
import Tiering

/// How far a search looks: the HNSW candidate list, the IVF partitions probed, and how IVF
/// partitions are scanned (compact codes first, then exact vectors of the best candidates).
public struct SearchOptions: Sendable, Hashable {
    /// HNSW candidate list size (at least `k` is used).
    public var ef: Int
    /// IVF partitions probed, for a segment holding every row searched; a segment holding a
    /// share `s` of the rows probes `nprobe·√s` of its partitions (at least one), so a database
    /// split over many segments scans about as many rows as one segment would. Default 24
    /// (recall@10 0.965 on 1 000 000 × 768 anisotropic clusters, `vecgo-bench scale`).
    public var nprobe: Int
    /// Which codes an IVF segment's probed partitions are scanned by.
    public var scan: CodeScan
    /// At most this many candidates per segment found by the codes are re-ranked with their
    /// exact vectors (each one a small ranged read when cold); 0 picks by the codes' kind
    /// (1-bit: max(10·k, 100), keeping only rows whose error bound can still reach the top k;
    /// SQ8: max(4·k, 40)).
    public var rerank: Int
    public init(ef: Int = 64, nprobe: Int = 24, scan: CodeScan = .automatic, rerank: Int = 0) {
        self.ef = ef
        self.nprobe = nprobe
        self.scan = scan
        self.rerank = rerank
    }
}

/// One hit of a segment search: the row's key, its row number in the segment, its distance.
struct SegmentHit: Sendable {
    var id: UInt64
    var row: Int
    var distance: Float
}

/// A row an IVF segment's codes found worth re-ranking: its row, key and vector CRC (from the
/// row info), and its estimated distance with bounds (equal to the estimate for SQ8 codes).
struct CodeCandidate: Sendable {
    var row: Int
    var key: UInt64
    var crc: UInt32
    var estimate: Float
    var lower: Float
    var upper: Float
    /// Whether `lower ... upper` bound the true distance (1-bit codes), not just repeat the estimate.
    var bounded: Bool
}

/// What one segment contributes to a search: exact hits (graph, flat, IVF scanned exactly), or
/// the candidates its codes found, which the search re-ranks with every other segment's so the
/// exact reads are spent on the best rows overall.
enum SegmentAnswer: Sendable {
    case hits([SegmentHit])
    case candidates([CodeCandidate])
}

/// A graph segment's graph, its nodes numbered by row, and the key of each row.
struct LoadedGraph: Sendable {
    let index: HNSWIndex
    let keys: [UInt64]
}

/// A committed segment seen by a reader: its manifest entry, its tail once read (footer, IVF
/// centroids), and its data read through the cache stack. A graph segment's graph is loaded
/// once and kept (warm data); flat and IVF data is re-read from the block cache per query.
final class SegmentReader: Sendable {
    let ref: SegmentRef
    let store: any BlobStore
    let metric: Metric
    /// The tail while it is being read, then the tail itself: a finished task is dropped, since a
    /// task keeps its own allocation (about a kilobyte) for as long as it is held, and the tail is
    /// kept for every segment of the current version.
    private let tailTask = Locked<Task<SegmentTail, any Error>?>(nil)
    private let tailValue = Locked<SegmentTail?>(nil)
    /// Decoded parts: the task while one is decoded, then the part itself (``kept(_:_:_:cost:_:)``).
    private let graphTask = Locked<Task<LoadedGraph, any Error>?>(nil)
    private let graphKept = Locked<KeptPart<LoadedGraph>?>(nil)
    private let metadataTask = Locked<Task<[Metadata], any Error>?>(nil)
    private let metadataKept = Locked<KeptPart<[Metadata]>?>(nil)
    private let flatTask = Locked<Task<([Float], [UInt64]), any Error>?>(nil)
    private let flatKept = Locked<KeptPart<([Float], [UInt64])>?>(nil)
    /// The 1-bit quantizer of the segment's code book (its signs and transposed rotation), made
    /// once instead of per query.
    private let quantizer = Locked<RaBitQ?>(nil)

    /// Where decoded graphs, flat rows and metadata are accounted (nil: kept without limit).
    private let budget: DecodedBudget?

    init(ref: SegmentRef, store: any BlobStore, metric: Metric, budget: DecodedBudget? = nil) {
        self.ref = ref
        self.store = store
        self.metric = metric
        self.budget = budget
    }

    /// Whether a task of a read or decode is held: only while one runs, never once it finished
    /// (for tests; a held task keeps kilobytes that no budget counts).
    var holdsTasks: Bool {
        tailTask.withLock { $0 != nil } || graphTask.withLock { $0 != nil } || metadataTask.withLock { $0 != nil }
            || flatTask.withLock { $0 != nil }
    }

    /// Runs `make` once and shares its result; a failure is not kept, so a later call retries.
    private static func once<T: Sendable>(_ slot: Locked<Task<T, any Error>?>, _ make: @escaping @Sendable () async throws -> T) async throws -> T {
        try await sharedTask(slot, make).value
    }

    /// Like ``once(_:_:)`` for a decoded part kept under the handle's byte budget: admitted
    /// when decoded (evicting older parts), touched on every use, and forgotten when evicted
    /// or when it alone exceeds the budget (then every use decodes it again). Once decoded, the
    /// part is held in `held` and its finished task let go: a task keeps its own allocation
    /// (kilobytes, not counted by the budget) for as long as it is held.
    private func kept<T: Sendable>(_ slot: Locked<Task<T, any Error>?>, _ held: Locked<KeptPart<T>?>, _ kind: String,
                                   cost: (T) -> Int, _ make: @escaping @Sendable () async throws -> T) async throws -> T {
        let key = ref.name + "#" + kind
        if let part = held.withLock({ $0 }) {
            budget?.touch(key)
            return part.value
        }
        let (value, started, task) = try await sharedTask(slot, make)
        guard started else { return value }
        let token = keptPartTokens.add(1, ordering: .relaxed).newValue
        held.withLock { $0 = KeptPart(value: value, token: token) }
        slot.withLock { if $0 == task { $0 = nil } }
        guard let budget else { return value }
        let forget: @Sendable () -> Void = { held.withLock { if $0?.token == token { $0 = nil } } }
        if !budget.admit(key, bytes: cost(value), drop: forget) { forget() }
        return value
    }

    /// The tail (footer, IVF sections), read once with one ranged read at the place the manifest
    /// gives. It is kept, outside the decoded budget, as long as the reader is: a handle's
    /// readers are those of its current version's segments (``VersionView``), so what tails hold
    /// is proportional to that version's segment count (a flat segment's tail is a few hundred
    /// bytes; an IVF segment's holds its centroids and code book).
    func tail() async throws -> SegmentTail {
        if let t = tailValue.withLock({ $0 }) { return t }
        let ref = self.ref, store = self.store
        let t = try await Self.once(tailTask) {
            try await store.readChecked(ref.name, ranges: [ref.tailOffset..<ref.size]) {
                try SegmentTail.decode($0[0], tailOffset: ref.tailOffset, objectSize: ref.size, object: ref.name)
            }
        }
        tailValue.withLock { $0 = t }
        tailTask.withLock { $0 = nil }
        return t
    }

    /// Reads `range` (`what` of the segment, for messages) and decodes it with `decode`, which
    /// checks it: through the tiers, read once more from the store when the check fails.
    private func read<T: Sendable>(_ range: Range<UInt64>, _ what: String,
                                   _ decode: @escaping @Sendable ([UInt8]) throws -> T) async throws -> T {
        let name = ref.name
        return try await store.readChecked(name, ranges: [range]) { parts in
            let bytes = parts[0]
            guard bytes.count == Int(range.upperBound - range.lowerBound) else {
                throw FormatError(.truncated, object: name, offset: range.lowerBound + UInt64(bytes.count), "\(what) is cut short")
            }
            return try decode(bytes)
        }
    }

    /// The top `k` rows of this segment for `query` among the `allowed` rows (all when nil).
    /// Whenever at least `k` rows are allowed, `k` come back: a graph or IVF search that
    /// finds fewer falls back to scanning every allowed row.
    func search(_ query: [Float], k: Int, options: SearchOptions, allowed: Bitmap? = nil) async throws -> [SegmentHit] {
        switch try await answer(query, k: k, options: options, allowed: allowed) {
        case .hits(let hits): return hits
        case .candidates(let all):
            return Array(try await rerank(query, Self.rerankSet(all, k: k, rerank: options.rerank, exact: []))
                .sorted { $0.distance < $1.distance }.prefix(k))
        }
    }

    /// The segment's part of a search: its exact top `k` rows, or the candidates its codes found.
    /// - Parameter totalRows: rows of every segment the search covers; an IVF segment holding a
    ///   share `s` of them probes `nprobe·√s` partitions (at least 1), since its partitions are
    ///   `1/√s` times larger than those of one segment holding every row (nil: all of them here).
    func answer(_ query: [Float], k: Int, options: SearchOptions, allowed: Bitmap? = nil, totalRows: UInt64? = nil) async throws -> SegmentAnswer {
        let t = try await tail()
        let f = t.footer
        guard f.dimension == query.count else {
            throw FormatError(.corrupted, object: ref.name, offset: ref.tailOffset,
                              "the segment holds \(f.dimension)-dimensional vectors, the database \(query.count)")
        }
        guard UInt64(f.rowCount) == ref.rowCount else {
            throw FormatError(.corrupted, object: ref.name, offset: ref.tailOffset,
                              "the footer says \(f.rowCount) rows, the manifest \(ref.rowCount)")
        }
        guard f.rowCount > 0, let vd = f.section(.vectors), let idd = f.section(.ids) else { return .hits([]) }
        let rowCount = Int(f.rowCount)
        let matching = allowed?.cardinality ?? rowCount
        guard matching > 0 else { return .hits([]) }
        let want = min(k, matching)
        if let ivf = t.ivf {
            // Too few matches in the probed partitions (a selective filter): probe four times
            // as many, up to all of them, rather than all at once.
            let share = Double(f.rowCount) / Double(max(totalRows ?? f.rowCount, f.rowCount))
            var nprobe = max(1, Int((Double(options.nprobe) * share.squareRoot()).rounded(.up)))
            let block = t.codebook.flatMap { Self.scannedBlock(options.scan, $0) }
            while true {
                if let block, let book = t.codebook, let cd = f.section(.ivfCodes) {
                    let limit = Self.rerankLimit(k: k, rerank: options.rerank, bounded: block == .binary)
                    let found = try await codeCandidates(query, nprobe: nprobe, limit: limit, block: block, book: book, ivf: ivf,
                                                         footer: f, cd: cd, allowed: allowed)
                    if found.count >= want || nprobe >= ivf.nlist { return .candidates(found) }
                } else {
                    let probed = try await searchIVF(query, k: k, nprobe: nprobe, ivf: ivf, footer: f, vd: vd, idd: idd, allowed: allowed)
                    if probed.count >= want || nprobe >= ivf.nlist { return .hits(probed) }
                }
                nprobe = min(ivf.nlist, nprobe * 4)
            }
        }
        if f.section(.hnswGraph) != nil {
            let g = try await graph(t)
            // The planner chooses between a scan of the allowed rows and the graph (ef widened
            // for a narrow filter); a graph search that finds too few is completed by the scan.
            let plan = FilterPlanner().plan(hnswRows: rowCount, matching: matching, k: k, ef: max(options.ef, k))
            let hits = g.index.search(query, k: k, plan: plan, allowed: allowed)
            return .hits(hits.map { SegmentHit(id: g.keys[Int($0.id)], row: Int($0.id), distance: $0.distance) })
        }
        let (vectors, ids) = try await flatRows(f, vd: vd, idd: idd)
        var top = TopK(k: k)
        let dim = f.dimension
        query.withUnsafeBufferPointer { q in
            vectors.withUnsafeBufferPointer { v in
                if let allowed {  // a flat segment's plan is always the scan of the allowed rows
                    FlatSearch.search(query: q.baseAddress!, allowed: allowed, rows: rowCount, dimension: dim, metric: metric,
                                      into: &top, vector: { v.baseAddress! + $0 * dim }, id: { UInt64($0) })
                } else {
                    FlatSearch.search(query: q.baseAddress!, vectors: v, dimension: dim, metric: metric, into: &top,
                                      id: { UInt64($0) })
                }
            }
        }
        return .hits(top.sorted().map { SegmentHit(id: ids[Int($0.id)], row: Int($0.id), distance: $0.distance) })
    }

    /// A flat segment's vectors and ids, decoded (and checked) once and kept: flat segments are
    /// small (under 2 000 rows), so warm queries scan memory instead of re-decoding blocks.
    private func flatRows(_ f: SegmentFooter, vd: SectionDescriptor, idd: SectionDescriptor) async throws -> ([Float], [UInt64]) {
        let ref = self.ref
        return try await kept(flatTask, flatKept, "flat", cost: { $0.0.count * 4 + $0.1.count * 8 }) {
            async let vectors = self.read(vd.range, "vector section") { try SegmentCodec.decodeVectors($0, vd, footer: f, object: ref.name) }
            async let ids = self.read(idd.range, "id section") { try SegmentCodec.decodeIDs($0, idd, footer: f, object: ref.name) }
            return (try await vectors, try await ids)
        }
    }

    /// The ids of the rows, in row order.
    func ids() async throws -> [UInt64] {
        let f = try await tail().footer
        guard let idd = f.section(.ids) else { return [] }
        let name = ref.name
        return try await read(idd.range, "id section") { try SegmentCodec.decodeIDs($0, idd, footer: f, object: name) }
    }

    /// The metadata of every row (empty maps when the segment has none), read once and kept.
    func metadata() async throws -> [Metadata] {
        let ref = self.ref
        return try await kept(metadataTask, metadataKept, "metadata", cost: Self.metadataBytes) {
            let f = try await self.tail().footer
            guard let md = f.section(.metadata) else { return Array(repeating: [:], count: Int(f.rowCount)) }
            return try await self.read(md.range, "metadata section") { try SegmentCodec.decodeMetadata($0, md, footer: f, object: ref.name) }
        }
    }

    /// The parts `include` asks for of each row in `rows`, every byte checked by its CRC.
    func rows(_ rows: [Int], include: Include) async throws -> [Int: (Metadata?, [UInt8]?, [Float]?)] {
        let t = try await tail()
        let f = t.footer
        var out: [Int: (Metadata?, [UInt8]?, [Float]?)] = [:]
        for r in rows where r < 0 || r >= f.rowCount {
            throw FormatError(.corrupted, object: ref.name, offset: ref.tailOffset, "row \(r) is outside the segment's \(f.rowCount) rows")
        }
        let meta = include.contains(.metadata) ? try await metadata() : nil
        var payloads: [[UInt8]]?
        if include.contains(.payload) {
            if let pd = f.section(.payloads) {
                let name = ref.name
                payloads = try await read(pd.range, "payload section") { try SegmentCodec.decodePayloads($0, pd, footer: f, object: name) }
            } else {
                payloads = Array(repeating: [], count: Int(f.rowCount))
            }
        }
        var vectorOf: [Int: [Float]] = [:]
        if include.contains(.vector), let vd = f.section(.vectors) {
            if f.section(.hnswGraph) != nil, t.ivf == nil {
                let g = try await graph(t)
                for r in rows { vectorOf[r] = g.index.vector(row: r) }
            } else if t.ivf != nil, let book = t.codebook, let cd = f.section(.ivfCodes) {
                // Each wanted row's vector and its row info alone, checked against the row's CRC.
                let dim4 = UInt64(f.dimension * 4)
                var ranges: [Range<UInt64>] = []
                for r in rows {
                    let info = cd.offset + book.range(.rowInfo, rows: r..<r + 1, totalRows: Int(f.rowCount), dimension: f.dimension).lowerBound
                    ranges.append(vd.offset + UInt64(r) * dim4..<vd.offset + UInt64(r + 1) * dim4)
                    ranges.append(info..<info + 12)
                }
                let name = ref.name, wanted = rows, checkedRanges = ranges
                let vectors = try await store.readChecked(name, ranges: ranges) { parts in
                    var out: [Int: [Float]] = [:]
                    for (i, r) in wanted.enumerated() {
                        let vector = parts[2 * i], info = parts[2 * i + 1]
                        guard vector.count == Int(dim4), info.count == 12,
                              info.withUnsafeBytes({ UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }) == crc32c(vector) else {
                            throw FormatError(.corrupted, object: name, offset: checkedRanges[2 * i].lowerBound, "the vector of row \(r) does not match its checksum")
                        }
                        var reader = ByteReader(vector, object: name, baseOffset: checkedRanges[2 * i].lowerBound)
                        out[r] = try reader.readFloats(f.dimension)
                    }
                    return out
                }
                vectorOf.merge(vectors) { a, _ in a }
            } else if let ivf = t.ivf, let idd = f.section(.ids) {
                // One checked partition read per partition holding a wanted row.
                let dim4 = UInt64(f.dimension * 4)
                for p in Set(rows.map { ivf.partition(ofRow: $0) }) {
                    let pr = ivf.rows(p)
                    let lo = UInt64(pr.lowerBound), hi = UInt64(pr.upperBound)
                    let name = ref.name
                    let floats = try await store.readChecked(name, ranges: [vd.offset + lo * dim4..<vd.offset + hi * dim4,
                                                                              idd.offset + lo * 8..<idd.offset + hi * 8]) { parts in
                        try ivf.check(partition: p, vectors: parts[0], ids: parts[1], object: name, offset: vd.offset + lo * dim4)
                        var reader = ByteReader(parts[0], object: name, baseOffset: vd.offset + lo * dim4)
                        return try reader.readFloats(pr.count * f.dimension)
                    }
                    for r in rows where pr.contains(r) {
                        let i = r - pr.lowerBound
                        vectorOf[r] = Array(floats[i * f.dimension..<(i + 1) * f.dimension])
                    }
                }
            } else if let idd = f.section(.ids) {
                let (all, _) = try await flatRows(f, vd: vd, idd: idd)
                for r in rows { vectorOf[r] = Array(all[r * f.dimension..<(r + 1) * f.dimension]) }
            }
        }
        for r in rows {
            out[r] = (meta.map { r < $0.count ? $0[r] : [:] }, payloads.map { r < $0.count ? $0[r] : [] }, vectorOf[r])
        }
        return out
    }

    /// The code block `scan` reads of a segment with `book`, or nil to scan exact vectors.
    static func scannedBlock(_ scan: CodeScan, _ book: IVFCodebook) -> IVFCodebook.Block? {
        switch scan {
        case .exact: nil
        case .sq8: book.kinds.contains(.sq8) ? .sq8 : nil
        case .automatic, .binary: book.kinds.contains(.binary) ? .binary : book.kinds.contains(.sq8) ? .sq8 : nil
        }
    }

    /// Scans the codes of the probed partitions (row info and one code block each, read
    /// together and checked block by block) and returns every allowed row with its estimated
    /// distance. The tail, then the codes: two round trips when cold.
    private func codeCandidates(_ query: [Float], nprobe: Int, limit: Int, block: IVFCodebook.Block, book: IVFCodebook, ivf: IVFLayout,
                                footer f: SegmentFooter, cd: SectionDescriptor, allowed: Bitmap?) async throws -> [CodeCandidate] {
        let dim = f.dimension, total = Int(f.rowCount)
        let probe = IVFIndex.probe(query, centroids: ivf.centroids, dimension: dim, metric: metric, nprobe: nprobe)
            .filter { !ivf.rows($0).isEmpty }
        var ranges: [Range<UInt64>] = []
        for p in probe {
            for b in [IVFCodebook.Block.rowInfo, block] {
                let r = book.range(b, rows: ivf.rows(p), totalRows: total, dimension: dim)
                ranges.append(cd.offset + r.lowerBound..<cd.offset + r.upperBound)
            }
        }
        let name = ref.name, checkedRanges = ranges
        let bytes = try await store.readChecked(name, ranges: ranges) { bytes in
            for (i, p) in probe.enumerated() {
                for (got, b, r) in [(bytes[2 * i], IVFCodebook.Block.rowInfo, checkedRanges[2 * i]), (bytes[2 * i + 1], block, checkedRanges[2 * i + 1])] {
                    guard got.count == r.count else {
                        throw FormatError(.truncated, object: name, offset: r.lowerBound + UInt64(got.count), "partition \(p) \(b) codes are cut short")
                    }
                    try book.check(b, partition: p, bytes: got, object: name, offset: r.lowerBound)
                }
            }
            return bytes
        }
        let rabitq = block == .binary ? quantizer.withLock { q in
            if q == nil { q = RaBitQ(dimension: dim, seed: book.seed) }
            return q
        } : nil
        // One rotation and one set of lookup tables per query serve every partition.
        let rotatedQuery = rabitq.map { r in query.withUnsafeBufferPointer { r.prepareQuery($0.baseAddress!) } }
        let sq8 = block == .sq8 ? SQ8Quantizer(minimums: book.sq8Minimums, scales: book.sq8Scales) : nil
        // Only the segment's best `limit` by estimate can be among the best `limit` overall.
        var candidates: [CodeCandidate] = []
        var best = TopK(k: limit)
        for (i, p) in probe.enumerated() {
            let rows = ivf.rows(p), n = rows.count
            let info = bytes[2 * i], codes = bytes[2 * i + 1]
            var estimates = [Float](repeating: 0, count: n), lower = [Float](repeating: 0, count: n), upper = [Float](repeating: 0, count: n)
            if let rabitq, let rotatedQuery {
                let prepared = ivf.centroids.withUnsafeBufferPointer { rabitq.prepare(rotatedQuery, centroid: $0.baseAddress! + p * dim, metric: metric) }
                codes.withUnsafeBytes { raw in
                    rabitq.estimate(prepared, records: raw.baseAddress!, count: n, estimates: &estimates, lowerBounds: &lower,
                                    upperBounds: &upper)
                }
            } else if let sq8 {
                codes.withUnsafeBufferPointer { c in
                    estimates.withUnsafeMutableBufferPointer { sq8.distances(metric, query: query, codes: c, out: $0) }
                }
                lower = estimates
                upper = estimates
            }
            info.withUnsafeBytes { raw in
                for j in 0..<n where estimates[j] <= best.threshold && (allowed?.contains(rows.lowerBound + j) ?? true) {
                    best.offer(Neighbor(id: UInt64(candidates.count), distance: estimates[j]))
                    candidates.append(CodeCandidate(row: rows.lowerBound + j,
                                                    key: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 12 * j, as: UInt64.self)),
                                                    crc: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12 * j + 8, as: UInt32.self)),
                                                    estimate: estimates[j], lower: lower[j], upper: upper[j], bounded: rabitq != nil))
                }
            }
        }
        return best.sorted().map { candidates[Int($0.id)] }
    }

    /// The exact distances of `chosen` rows: their vectors read row by row (in row order, so
    /// neighbours share pages and requests; coalesced by the cache), each checked against the
    /// CRC in its row info.
    func rerank(_ query: [Float], _ chosen: [CodeCandidate]) async throws -> [SegmentHit] {
        guard !chosen.isEmpty else { return [] }
        let f = try await tail().footer
        guard let vd = f.section(.vectors) else { return [] }
        let dim = f.dimension, dim4 = UInt64(dim * 4)
        let rowRanges = chosen.map { vd.offset + UInt64($0.row) * dim4..<vd.offset + UInt64($0.row + 1) * dim4 }
        let name = ref.name
        let vectors = try await store.readChecked(name, ranges: rowRanges) { vectors in
            for (i, c) in chosen.enumerated() {
                guard vectors[i].count == Int(dim4) else {
                    throw FormatError(.truncated, object: name, offset: rowRanges[i].lowerBound + UInt64(vectors[i].count), "the vector of row \(c.row) is cut short")
                }
                guard crc32c(vectors[i]) == c.crc else {
                    throw FormatError(.corrupted, object: name, offset: rowRanges[i].lowerBound, "the vector of row \(c.row) does not match its checksum")
                }
            }
            return vectors
        }
        var hits: [SegmentHit] = []
        hits.reserveCapacity(chosen.count)
        for (i, c) in chosen.enumerated() {
            let d = query.withUnsafeBufferPointer { q in
                vectors[i].withUnsafeBytes { Distance.distance(metric, q.baseAddress!, $0.baseAddress!.assumingMemoryBound(to: Float.self), dim) }
            }
            hits.append(SegmentHit(id: c.key, row: c.row, distance: d))
        }
        return hits
    }

    /// How many candidates a search re-ranks: `rerank`, or the default for the codes' kind
    /// (1-bit max(10·k, 100), SQ8 max(4·k, 40)); never fewer than `k`.
    static func rerankLimit(k: Int, rerank: Int, bounded: Bool) -> Int {
        max(k, rerank > 0 ? rerank : bounded ? max(10 * k, 100) : max(4 * k, 40))
    }

    /// The candidates worth re-ranking, in segment and row order: the best by estimate, at most
    /// ``rerankLimit(k:rerank:bounded:)``; a candidate with error bounds is dropped when its
    /// lower bound exceeds the k-th smallest upper bound among all candidates and the `exact`
    /// distances already known (it cannot be in the top k).
    static func rerankSet(_ all: [(segment: Int, candidate: CodeCandidate)], k: Int, rerank: Int,
                          exact: [Float]) -> [(segment: Int, candidate: CodeCandidate)] {
        let anyBounded = all.contains { $0.candidate.bounded }
        var kth = Float.infinity
        if anyBounded {
            var uppers = TopK(k: k)
            for d in exact { uppers.offer(Neighbor(id: 0, distance: d)) }
            for c in all where c.candidate.upper < uppers.threshold { uppers.offer(Neighbor(id: 0, distance: c.candidate.upper)) }
            kth = uppers.threshold
        }
        var best = TopK(k: rerankLimit(k: k, rerank: rerank, bounded: anyBounded))
        for (i, c) in all.enumerated() where !(c.candidate.bounded && c.candidate.lower > kth) && c.candidate.estimate <= best.threshold {
            best.offer(Neighbor(id: UInt64(i), distance: c.candidate.estimate))
        }
        return best.sorted().map { all[Int($0.id)] }.sorted { ($0.segment, $0.candidate.row) < ($1.segment, $1.candidate.row) }
    }

    /// ``rerankSet(_:k:rerank:exact:)`` of one segment's candidates.
    static func rerankSet(_ all: [CodeCandidate], k: Int, rerank: Int, exact: [Float]) -> [CodeCandidate] {
        rerankSet(all.map { (0, $0) }, k: k, rerank: rerank, exact: exact).map(\.candidate)
    }

    /// Reads only the probed partitions — each one range of vectors and one of ids, all asked
    /// of the store together so nearby ranges share requests — and checks each partition
    /// against its own checksums.
    private func searchIVF(_ query: [Float], k: Int, nprobe: Int, ivf: IVFLayout, footer f: SegmentFooter,
                           vd: SectionDescriptor, idd: SectionDescriptor, allowed: Bitmap?) async throws -> [SegmentHit] {
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
        let name = ref.name, checkedRanges = ranges
        let bytes = try await store.readChecked(name, ranges: ranges) { bytes in
            for (i, p) in probe.enumerated() {
                let vr = checkedRanges[2 * i], ir = checkedRanges[2 * i + 1]
                for (got, r, what) in [(bytes[2 * i], vr, "vectors"), (bytes[2 * i + 1], ir, "ids")] where got.count != r.count {
                    throw FormatError(.truncated, object: name, offset: r.lowerBound + UInt64(got.count), "partition \(p) \(what) are cut short")
                }
                try ivf.check(partition: p, vectors: bytes[2 * i], ids: bytes[2 * i + 1], object: name, offset: vr.lowerBound)
            }
            return bytes
        }
        var top = TopK(k: k)  // of row numbers
        var keys: [(rows: Range<Int>, ids: [UInt64])] = []
        for (i, p) in probe.enumerated() {
            let rows = ivf.rows(p)
            let vr = ranges[2 * i], ir = ranges[2 * i + 1]
            let vectorBytes = bytes[2 * i], idBytes = bytes[2 * i + 1]
            var reader = ByteReader(vectorBytes, object: ref.name, baseOffset: vr.lowerBound)
            var idReader = ByteReader(idBytes, object: ref.name, baseOffset: ir.lowerBound)
            let vectors = try reader.readFloats(rows.count * f.dimension)
            var ids: [UInt64] = []
            ids.reserveCapacity(rows.count)
            for _ in rows { ids.append(try idReader.read(UInt64.self)) }
            let first = rows.lowerBound
            keys.append((rows, ids))
            query.withUnsafeBufferPointer { q in
                vectors.withUnsafeBufferPointer { v in
                    FlatSearch.search(query: q.baseAddress!, vectors: v, dimension: f.dimension, metric: metric, into: &top,
                                      id: { UInt64(first + $0) }, skip: { !(allowed?.contains(first + $0) ?? true) })
                }
            }
        }
        return top.sorted().map { n in
            let row = Int(n.id)
            let part = keys.first { $0.rows.contains(row) }!
            return SegmentHit(id: part.ids[row - part.rows.lowerBound], row: row, distance: n.distance)
        }
    }

    /// Brings the whole segment into the cache tiers (and a graph segment's graph into
    /// memory). Returns the bytes it covers.
    func warm() async throws -> UInt64 {
        let t = try await tail()
        if t.footer.section(.hnswGraph) != nil, t.ivf == nil {
            _ = try await graph(t)
        } else if ref.tailOffset > 0 {
            _ = try await read(0..<ref.tailOffset, "segment data") { $0.count }
        }
        return ref.size
    }

    /// The segment's graph with its vectors, loaded once and kept (under the budget). Its
    /// nodes are numbered by row, so hits name their rows; `keys` maps rows to keys.
    private func graph(_ t: SegmentTail) async throws -> LoadedGraph {
        let ref = self.ref, metric = self.metric
        return try await kept(graphTask, graphKept, "graph", cost: { $0.index.memoryBytes + $0.keys.count * 8 }) {
            let f = t.footer
            guard let vd = f.section(.vectors), let idd = f.section(.ids), let gd = f.section(.hnswGraph) else {
                throw FormatError(.corrupted, object: ref.name, offset: ref.tailOffset, "graph segment lacks a section")
            }
            async let vb = self.read(vd.range, "vector section") { try SegmentCodec.decodeVectors($0, vd, footer: f, object: ref.name) }
            async let ib = self.read(idd.range, "id section") { try SegmentCodec.decodeIDs($0, idd, footer: f, object: ref.name) }
            async let gb = self.read(gd.range, "graph section") { try SegmentCodec.decodeGraph($0, gd, footer: f, object: ref.name) }
            let vectors = try await vb, ids = try await ib, g = try await gb
            let index = HNSWIndex(dimension: f.dimension, metric: metric, parameters: .init(m: g.m), vectors: vectors,
                                  ids: (0..<UInt64(ids.count)).map { $0 },
                                  graph: HNSWGraph(m: g.m, entryPoint: g.entryPoint, maxLevel: g.maxLevel, levels: g.levels,
                                                   level0: g.level0, upper: g.upper))
            return LoadedGraph(index: index, keys: ids)
        }
    }

    /// An estimate of the memory decoded metadata holds (dictionary and string overheads included).
    private static func metadataBytes(_ rows: [Metadata]) -> Int {
        var total = rows.count * 64
        for row in rows {
            for (key, value) in row {
                total += 48 + key.utf8.count
                switch value {
                case .string(let s): total += s.utf8.count
                case .stringList(let l): total += l.reduce(16 * l.count) { $0 + $1.utf8.count }
                default: break
                }
            }
        }
        return total
    }
}

/// A decoded part a ``SegmentReader`` keeps, and the token of its entry in the budget (so
/// dropping an old entry never forgets a newer decode of the same part).
struct KeptPart<T: Sendable>: Sendable {
    let value: T
    let token: UInt64
}

/// Where the tokens of ``KeptPart``s come from.
private let keptPartTokens = Atomic<UInt64>(0)

/// The task of `slot`, started with `make` when there is none; its value, whether this call
/// started it, and the task. A failure is not kept: the slot is emptied so a later call retries.
func sharedTask<T: Sendable>(_ slot: Locked<Task<T, any Error>?>, _ make: @escaping @Sendable () async throws -> T)
    async throws -> (value: T, started: Bool, task: Task<T, any Error>) {
    let (task, started) = slot.withLock { t -> (Task<T, any Error>, Bool) in
        if let t { return (t, false) }
        let new = Task { try await make() }
        t = new
        return (new, true)
    }
    do {
        return (try await task.value, started, task)
    } catch {
        slot.withLock { if $0 == task { $0 = nil } }
        throw error
    }
}
