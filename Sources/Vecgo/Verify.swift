// Vecgo.verify: reads every object of a prefix (fault-free reads checked twice before blaming the store) and reports what is damaged or missing.
public import Stores
import Tiering
import SegmentFormat

/// What ``Vecgo/verify(_:)`` found.
public struct VerifyReport: Sendable, Codable {
    /// One damaged or missing object.
    public struct Problem: Sendable, Codable, Hashable {
        /// The object's name.
        public var object: String
        /// What is wrong with it.
        public var problem: String
    }
    /// Manifests checked.
    public var manifests = 0
    /// Distinct segments checked.
    public var segments = 0
    /// Distinct pk-index objects (full indexes and delta layers) checked.
    public var pkIndexes = 0
    /// Everything found wrong; empty when the prefix is sound.
    public var problems: [Problem] = []
    /// Whether nothing is wrong.
    public var ok: Bool { problems.isEmpty }

    enum CodingKeys: String, CodingKey { case manifests, segments, pkIndexes = "pk_indexes", problems, ok }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        manifests = try c.decode(Int.self, forKey: .manifests)
        segments = try c.decode(Int.self, forKey: .segments)
        pkIndexes = try c.decode(Int.self, forKey: .pkIndexes)
        problems = try c.decode([Problem].self, forKey: .problems)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(manifests, forKey: .manifests)
        try c.encode(segments, forKey: .segments)
        try c.encode(pkIndexes, forKey: .pkIndexes)
        try c.encode(problems, forKey: .problems)
        try c.encode(ok, forKey: .ok)
    }
}

extension Vecgo {
    /// Checks every manifest under the store's prefix and every segment and pk-index layer they
    /// reference: each must exist, have the size recorded, decode with every checksum correct,
    /// and agree with its manifest; each manifest's pk-index layers must combine (a full index,
    /// then deltas, naming only its segments) into an index that agrees with its dead-row counts. Reads every byte; meant for tools and audits, not queries.
    public static func verify(_ store: any BlobStore) async throws -> VerifyReport {
        let listing: [ObjectInfo]
        do { listing = try await store.list(prefix: "") } catch { throw VecgoError.wrap(error, "listing the store") }
        let sizes = Dictionary(listing.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        var report = VerifyReport()
        var checked = Set<String>()
        var layers: [String: PKIndex] = [:]  // decoded pk-index layers of the last manifest's chain
        var damaged = Set<String>(), chainProblems = Set<String>()
        func problem(_ object: String, _ text: String) { report.problems.append(.init(object: object, problem: text)) }
        for o in listing {
            guard let version = Manifest.version(fromObjectName: o.name) else { continue }
            report.manifests += 1
            let m: Manifest
            do { m = try await store.readChecked(o.name, ranges: [0..<UInt64.max]) { try Manifest.decode($0[0], object: o.name) } } catch {
                problem(o.name, "\(error)")
                continue
            }
            if m.version != version { problem(o.name, "records version \(m.version), its name says \(version)") }
            for s in m.segments where checked.insert(s.name).inserted {
                report.segments += 1
                guard let size = sizes[s.name] else {
                    problem(s.name, "missing (referenced by \(o.name))")
                    continue
                }
                guard size == s.size else {
                    problem(s.name, "is \(size) bytes, \(o.name) records \(s.size)")
                    continue
                }
                do {
                    let c = try await store.readChecked(s.name, ranges: [0..<s.size]) { try SegmentCodec.decode($0[0], object: s.name) }
                    if c.rowCount != Int(s.rowCount) { problem(s.name, "holds \(c.rowCount) rows, \(o.name) records \(s.rowCount)") }
                    if c.dimension != m.dimension { problem(s.name, "has dimension \(c.dimension), the manifest \(m.dimension)") }
                } catch {
                    problem(s.name, "\(error)")
                }
            }
            // Each pk-index layer once; then that the chain combines over this manifest's segments.
            var chain: [PKIndex.Layer] = []
            for l in m.pkIndexLayers {
                if let layer = layers[l.name] {
                    chain.append((l.name, layer))
                    continue
                }
                guard !damaged.contains(l.name) else { continue }  // reported already
                if checked.insert(l.name).inserted { report.pkIndexes += 1 }
                guard let size = sizes[l.name] else {
                    damaged.insert(l.name)
                    problem(l.name, "missing (referenced by \(o.name))")
                    continue
                }
                guard size == l.size else {
                    damaged.insert(l.name)
                    problem(l.name, "is \(size) bytes, \(o.name) records \(l.size)")
                    continue
                }
                do {
                    let layer = try await store.readChecked(l.name, ranges: [0..<l.size]) { try PKIndex.decode($0[0], object: l.name) }
                    layers[l.name] = layer
                    chain.append((l.name, layer))
                } catch {
                    damaged.insert(l.name)
                    problem(l.name, "\(error)")
                }
            }
            // Chains share their older layers with the versions around them: keep this one's.
            let names = Set(m.pkIndexLayers.map(\.name))
            layers = layers.filter { names.contains($0.key) }
            guard !chain.isEmpty, chain.count == m.pkIndexLayers.count else { continue }
            let pk: PKIndex
            do { pk = try PKIndex.combine(chain, segments: m.segments.map(\.name), version: m.version) } catch {
                if chainProblems.insert("\(error)").inserted { problem(error.object, "\(error) (the pk-index of \(o.name))") }
                continue
            }
            // The manifest's dead-row counts (when it records them) must agree with it.
            var live = [UInt64](repeating: 0, count: m.segments.count)
            for loc in pk.entries.values where Int(loc.segment) < live.count { live[Int(loc.segment)] += 1 }
            for (i, s) in m.segments.enumerated() {
                if let dead = s.deadRows, dead != s.rowCount - min(live[i], s.rowCount), dead < UInt64(UInt32.max) {
                    problem(o.name, "records \(dead) dead rows in \(s.name); its pk-index leaves \(s.rowCount - min(live[i], s.rowCount))")
                }
            }
        }
        return report
    }
}
