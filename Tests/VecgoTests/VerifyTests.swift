import Foundation
import SegmentFormat
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

@Suite struct VerifyTests {
    static func database() async throws -> MemoryBlobStore {
        let store = MemoryBlobStore()
        let w = try await Vecgo.open(.remote(store), .create(dimension: 4, metric: .l2))
        for i in 0..<50 { try await w.insert([Float(i), 1, 2, 3]) }
        try await w.commit()
        for i in 0..<50 { try await w.insert([Float(i), 4, 5, 6]) }
        try await w.close()
        return store
    }

    @Test func aSoundDatabaseVerifies() async throws {
        let report = try await Vecgo.verify(try await Self.database())
        #expect(report.ok)
        #expect(report.manifests == 3 && report.segments == 2 && report.pkIndexes == 2)  // + the key reservation
    }

    @Test func damagedAndMissingObjectsAreNamed() async throws {
        let store = try await Self.database()
        let segments = try await store.list(prefix: "segment_").map(\.name)
        var bytes = try await store.read(segments[0])
        bytes[bytes.count / 2] ^= 0xFF
        try await store.put(segments[0], bytes)
        try await store.delete(segments[1])
        let report = try await Vecgo.verify(store)
        #expect(!report.ok)
        #expect(Set(report.problems.map(\.object)) == Set(segments))
        #expect(report.problems.contains { $0.object == segments[1] && $0.problem.contains("missing") })
    }

    /// A tool of the package (`vecgo`, `vecgo-bench`) next to the test binary (`swift build --build-tests` builds it).
    static func tool(_ name: String = "vecgo") -> URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Runs a tool of the package (`vecgo` unless named); its exit status and everything it printed.
    static func run(_ args: [String], tool name: String = "vecgo") async throws -> (Int32, String) {
        let url = tool(name)
        return try await offThePool {
            let p = Process()
            p.executableURL = url
            p.arguments = args
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, out)
        }
    }

    @Test func theCommandLineToolListsVersionsCompactsAndVacuums() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/vecgo-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try await Vecgo.open(.directory(dir), .create(dimension: 2, metric: .l2))
        for i in 0..<3 {
            try await w.upsert(id: UInt64(i), [Float(i), 0])
            try await w.commit()
        }
        try await w.close()
        let (_, listed) = try await Self.run(["versions", dir, "--json"])
        let versions = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        #expect(versions.compactMap { $0["version"] as? Int } == [1, 2, 3])
        let (compactStatus, compacted) = try await Self.run(["compact", dir])
        #expect(compactStatus == 0)
        #expect(compacted.contains("compacted into version 4: 3 segments merged, 3 rows kept"), "\(compacted)")
        let (refused, why) = try await Self.run(["vacuum", dir, "--grace", "1"])
        #expect(refused == 2 && why.contains("maxCommitObjectAge"), "a grace period under the writers' commit age must be refused: \(why)")
        try await Task.sleep(nanoseconds: 100_000_000)
        let (vacuumStatus, vacuumed) = try await Self.run(["vacuum", dir, "--retain", "1", "--grace", "0.05", "--max-commit-age", "0.05"])
        #expect(vacuumStatus == 0)
        #expect(vacuumed.contains("kept versions from 4; deleted 3 manifests and 6 objects"), "\(vacuumed)")  // 3 segments, 3 pk-indexes
        let reader = try await Vecgo.open(.directory(dir), .readOnly)
        #expect(try await reader.search([0, 0], k: 10).map(\.id).sorted() == [0, 1, 2])
    }

    /// The command-line tool exits non-zero and names the damaged object.
    @Test func theCommandLineToolReportsDamage() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/vecgo-verify-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try await Vecgo.open(.directory(dir), .create(dimension: 2, metric: .l2))
        try await w.insert([1, 2])
        try await w.close()
        #expect(FileManager.default.isExecutableFile(atPath: Self.tool().path), "build the vecgo tool first (swift build --build-tests builds it)")
        let (okStatus, okOut) = try await Self.run(["verify", dir])
        #expect(okStatus == 0)
        #expect(okOut.contains("all good"))
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("segment_") })
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/" + segment)))
        bytes[40] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + segment))
        let (badStatus, badOut) = try await Self.run(["verify", dir, "--json"])
        #expect(badStatus == 1)
        #expect(badOut.contains(segment))
        #expect(badOut.contains("\"ok\" : false"))
    }
}
