import SegmentFormat
import Testing

/// Delta layers, manifests that list a chain of them, and the combination rule
/// (spec/format.md, "Combining layers").
@Suite struct PKIndexLayerTests {
    static func full(_ segments: [String], _ entries: [UInt64: PKIndex.Location]) -> PKIndex {
        PKIndex(version: 1, segments: segments, entries: entries)
    }

    static func delta(_ segments: [String], _ entries: [UInt64: PKIndex.Location], removing: [UInt64] = []) -> PKIndex {
        PKIndex(version: 2, segments: segments, entries: entries, tombstones: removing, kind: .delta)
    }

    @Test func deltasSetAndRemoveKeysInChainOrder() throws {
        let layers: [PKIndex.Layer] = [
            ("full", Self.full(["a", "b"], [1: .init(segment: 0, row: 0), 2: .init(segment: 1, row: 0), 3: .init(segment: 1, row: 1)])),
            ("d1", Self.delta(["c"], [2: .init(segment: 0, row: 0), 4: .init(segment: 0, row: 1)], removing: [1, 99])),
            ("d2", Self.delta(["c"], [1: .init(segment: 0, row: 2)], removing: [4])),  // 1 comes back, 4 goes again
        ]
        let combined = try PKIndex.combine(layers, segments: ["b", "a", "c"], version: 9)
        #expect(combined.version == 9 && combined.segments == ["b", "a", "c"] && combined.kind == .full)
        #expect(combined.entries == [1: .init(segment: 2, row: 2), 2: .init(segment: 2, row: 0), 3: .init(segment: 0, row: 1)])
    }

    @Test func aChainMustStartWithItsOnlyFullIndex() {
        let f = Self.full(["a"], [1: .init(segment: 0, row: 0)]), d = Self.delta(["a"], [2: .init(segment: 0, row: 1)])
        for (layers, culprit) in [([("d", d), ("f", f)], "d"), ([("f", f), ("d", d), ("f2", f)], "f2")] as [([PKIndex.Layer], String)] {
            let error = #expect(throws: FormatError.self) { try PKIndex.combine(layers, segments: ["a"], version: 3) }
            #expect(error?.code == .corrupted && error?.object == culprit, "\(String(describing: error))")
        }
    }

    /// An entry left pointing at a segment the manifest lacks is corrupt, and the layer it came
    /// from is named; one a later layer replaced or removed is not checked.
    @Test func strayEntriesNameTheirLayer() throws {
        let f = Self.full(["a", "gone"], [1: .init(segment: 0, row: 0), 2: .init(segment: 1, row: 0)])
        let stray = Self.delta(["gone2"], [3: .init(segment: 0, row: 0)])
        let error = #expect(throws: FormatError.self) {
            try PKIndex.combine([("f", f), ("fix", Self.delta([], [:], removing: [2])), ("stray", stray)], segments: ["a"], version: 4)
        }
        #expect(error?.code == .corrupted && error?.object == "stray" && error?.message.contains("gone2") == true)
        let unfixed = #expect(throws: FormatError.self) { try PKIndex.combine([("f", f)], segments: ["a"], version: 4) }
        #expect(unfixed?.object == "f")
        // Key 2 moved away from the dropped segment by a later delta: the chain is sound.
        let moved = try PKIndex.combine([("f", f), ("m", Self.delta(["a"], [2: .init(segment: 0, row: 5)]))], segments: ["a"], version: 4)
        #expect(moved.entries == [1: .init(segment: 0, row: 0), 2: .init(segment: 0, row: 5)])
    }

    @Test func deltaTombstonesMustBeUnambiguous() throws {
        for bad in [Self.delta([], [:], removing: [3, 2]), Self.delta([], [:], removing: [2, 2]),
                    Self.delta(["a"], [2: .init(segment: 0, row: 0)], removing: [2])] {
            let error = #expect(throws: FormatError.self) { try bad.encode() }
            #expect(error?.code == .invalidInput)
        }
        // A full index keeps reading as it always did (its tombstones take no part).
        let full = PKIndex(version: 1, segments: ["a"], entries: [2: .init(segment: 0, row: 0)], tombstones: [3, 2])
        #expect(try PKIndex.decode(try full.encode(), object: "f") == full)
    }

    @Test func layeredManifestsRoundTripAndDetectDamage() throws {
        var m = ManifestAndPKIndexTests.manifest
        m.pkIndexBaseLayers = [PKIndexLayer(name: "pkindex_a.bin", size: 1_000), PKIndexLayer(name: "pkindex_b.bin", size: 60)]
        let bytes = try m.encode()
        #expect(try Manifest.decode(bytes, object: "m") == m)
        #expect(m.pkIndexLayers.map(\.name) == ["pkindex_a.bin", "pkindex_b.bin", m.pkIndexObject])
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x04
            #expect(throws: FormatError.self, "byte \(i)") { try Manifest.decode(damaged, object: "m") }
        }
        for n in 0..<bytes.count {
            #expect(throws: FormatError.self, "cut to \(n)") { try Manifest.decode(Array(bytes.prefix(n)), object: "m") }
        }
        // Layers without a newest one, or a name twice, cannot be written.
        var orphan = m
        orphan.pkIndexObject = ""
        #expect(throws: FormatError.self) { try orphan.encode() }
        var twice = m
        twice.pkIndexBaseLayers.append(PKIndexLayer(name: m.pkIndexObject, size: 1))
        #expect(throws: FormatError.self) { try twice.encode() }
    }
}
