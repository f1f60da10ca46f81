// Combining a manifest's chain of pk-index layers (a full index, then deltas) into one index.
/// Combining a manifest's pk-index layers (spec/format.md, "Combining layers"): a full index,
/// then deltas applied in order, mapped onto the manifest's segments.
extension PKIndex {
    /// One decoded layer and the object it came from (named in errors).
    public typealias Layer = (name: String, index: PKIndex)

    /// The key index a chain of layers describes, as one full index over `segments` (the
    /// manifest's segment names, in order): the oldest layer's entries, then per delta its
    /// tombstones removed and its entries set; each surviving entry's segment, found by name,
    /// becomes that segment's ordinal in `segments`.
    ///
    /// Takes the layers by value: the oldest layer's entries become the result without a copy
    /// when no one else holds them.
    ///
    /// - Throws: `corrupted` naming the layer when the oldest layer is not a full index or a
    ///   later one is, or when a surviving entry names a segment `segments` lacks.
    public static func combine(_ chain: consuming [Layer], segments: [String], version: UInt64) throws(FormatError) -> PKIndex {
        var layers = chain
        guard !layers.isEmpty else { return PKIndex(version: version, segments: segments, entries: [:]) }
        guard layers[0].index.kind == .full else {
            throw FormatError(.corrupted, object: layers[0].name, offset: 12, "the oldest pk-index layer must be a full index, it is a delta")
        }
        if let later = layers.dropFirst().first(where: { $0.index.kind == .full }) {
            throw FormatError(.corrupted, object: later.name, offset: 12, "a full pk-index can only be the oldest layer of a chain")
        }
        var ordinal: [String: UInt32] = [:]
        for (i, s) in segments.enumerated() where ordinal[s] == nil { ordinal[s] = UInt32(i) }
        let outside = UInt32.max  // no manifest has that many segments (DecodingLimits.maxSegments)
        // Per layer: its segment ordinals → the manifest's (or `outside`).
        let maps = layers.map { layer in layer.index.segments.map { ordinal[$0] ?? outside } }
        // Entries left pointing outside the manifest, with the layer and segment they came from;
        // a later layer may still replace or remove them.
        var unresolved: [UInt64: (layer: Int, segment: UInt32)] = [:]

        var entries = layers[0].index.entries
        layers[0].index.entries = [:]  // `entries` is now the only reference: changed in place
        let identity = maps[0].elementsEqual((0..<UInt32(maps[0].count)))
        if !identity {
            for (key, loc) in entries {
                let mapped = maps[0][Int(loc.segment)]
                if mapped == outside { unresolved[key] = (0, loc.segment) }
                entries[key] = Location(segment: mapped, row: loc.row)
            }
        }
        for l in layers.indices.dropFirst() {
            let delta = layers[l].index
            for t in delta.tombstones {
                entries[t] = nil
                if !unresolved.isEmpty { unresolved[t] = nil }
            }
            for (key, loc) in delta.entries {
                let mapped = maps[l][Int(loc.segment)]
                entries[key] = Location(segment: mapped, row: loc.row)
                if mapped == outside {
                    unresolved[key] = (l, loc.segment)
                } else if !unresolved.isEmpty {
                    unresolved[key] = nil
                }
            }
        }
        if let (key, from) = unresolved.min(by: { $0.key < $1.key }) {
            let layer = layers[from.layer]
            throw FormatError(.corrupted, object: layer.name, offset: 0,
                              "key \(key) points into segment '\(layer.index.segments[Int(from.segment)])', which manifest version \(version) does not list")
        }
        return PKIndex(version: version, segments: segments, entries: entries)
    }
}
