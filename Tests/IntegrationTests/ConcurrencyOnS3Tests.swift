import Foundation
import Stores
import Testing
import Vecgo
import _VecgoTestSupport

/// Several writer processes on one prefix, writers killed at random points, and readers that
/// refresh while writers, compaction and vacuum run — all against moto over HTTP.
@Suite(.serialized) struct ConcurrencyOnS3Tests {
    static let dimension = 8

    /// The same function as VecgoStressWriter's.
    static func vector(forKey key: UInt64) -> [Float] {
        (0..<dimension).map { j in Float((key &* 2_654_435_761 &+ UInt64(j) &* 40_503) % 10_007) / 10_007 }
    }

    static func writerBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["VECGO_STRESS_WRITER"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".build/debug/VecgoStressWriter").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingServer(message: "\(path) is missing: build it with `swift build` (the README test command does)")
        }
        return path
    }

    /// A fresh bucket and the URL of a prefix in it.
    static func prefix(_ tag: String) async throws -> (url: String, store: S3Store) {
        let bucket = TestEnvironment.uniqueBucket(tag)
        let config = S3Configuration(bucket: bucket, prefix: "db/", endpoint: try TestEnvironment.s3Endpoint(),
                                     credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
        let store = try S3Store(config)
        try await store.createBucketIfNeeded()
        return ("s3://\(bucket)/db/", store)
    }

    /// Starts a writer process; returns it and the pipe of its output.
    static func startWriter(_ url: String, writer: Int, commits: Int, rows: Int) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try writerBinary())
        p.arguments = [url, "--endpoint", try TestEnvironment.s3Endpoint(), "--writer", "\(writer)",
                       "--commits", "\(commits)", "--rows", "\(rows)", "--dim", "\(dimension)"]
        var env = ProcessInfo.processInfo.environment
        env["AWS_ACCESS_KEY_ID"] = "testing"
        env["AWS_SECRET_ACCESS_KEY"] = "testing"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        return (p, out)
    }

    /// The (version, writer, commit) of every "ACK" line.
    static func acks(_ pipe: Pipe) async throws -> [(version: UInt64, writer: Int, commit: Int)] {
        let text = try await offThePool { String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 4, f[0] == "ACK", let v = UInt64(f[1]), let w = Int(f[2]), let c = Int(f[3]) else { return nil }
            return (v, w, c)
        }
    }

    /// Every row of the newest version, by key; fails on a key seen twice.
    static func everything(_ store: any BlobStore) async throws -> [UInt64: SearchResult] {
        let reader = try await Vecgo.open(.remote(store), .readOnly)
        var out: [UInt64: SearchResult] = [:]
        for r in try await reader.search(Array(repeating: 0, count: dimension), k: 10_000, include: [.vector, .metadata]) {
            #expect(out[r.id] == nil, "key \(r.id) returned twice")
            out[r.id] = r
        }
        return out
    }

    @Test func concurrentWriterProcessesLoseNothingAndDuplicateNothing() async throws {
        let (url, store) = try await Self.prefix("procs")
        let writers = 4, commits = 5, rows = 40
        let started = try (0..<writers).map { try Self.startWriter(url, writer: $0 + 1, commits: commits, rows: rows) }
        var acked: [(version: UInt64, writer: Int, commit: Int)] = []
        for (p, pipe) in started {
            acked += try await Self.acks(pipe)
            try await offThePool { p.waitUntilExit() }
            #expect(p.terminationStatus == 0, "a writer process failed")
        }
        #expect(acked.count == writers * commits)
        #expect(Set(acked.map(\.version)).count == acked.count, "two commits acknowledged the same version")
        let rowsSeen = try await Self.everything(store)
        #expect(rowsSeen.count == writers * commits * rows)
        for (key, r) in rowsSeen { #expect(r.vector == Self.vector(forKey: key), "key \(key)") }
        #expect(try await Vecgo.verify(store).ok)
    }

    /// Issue 15, part 3: writers on disjoint keys beside a steady committer, all with default
    /// options. Losing a race is no error (every commit succeeds, no `.conflict`), and no writer
    /// starves: each of the others commits before the steady one has made `n` commits.
    @Test func writersBesideASteadyCommitterAllCommitInTurn() async throws {
        let (_, store) = try await Self.prefix("fair")
        let setup = try await Vecgo.open(.remote(store), .create(dimension: Self.dimension, metric: .l2))
        try await setup.upsert(id: 0, Self.vector(forKey: 0))
        try await setup.close()
        let n = 30, others = 3, commitsEach = 3, rows = 5
        let steadyCommits = Locked(0), othersDone = Locked(0)
        // For each other writer: how many commits the steady one had made when its first commit was acknowledged.
        let firstCommitAt = Locked<[Int: Int]>([:])
        let failures = Locked<[String]>([])
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    let db = try await Vecgo.open(.remote(store))
                    var c = 0
                    // It keeps committing while the others run (at most 10 n commits).
                    while othersDone.withLock({ $0 }) < others, c < 10 * n {
                        for i in 0..<rows {
                            let key = UInt64(1) << 40 | UInt64(c) << 20 | UInt64(i)
                            try await db.upsert(id: key, Self.vector(forKey: key))
                        }
                        try await db.commit()
                        c += 1
                        steadyCommits.withLock { $0 = c }
                    }
                    try await db.close()
                } catch { failures.withLock { $0.append("steady committer: \(error)") } }
            }
            for w in 0..<others {
                group.addTask {
                    defer { othersDone.withLock { $0 += 1 } }
                    do {
                        let db = try await Vecgo.open(.remote(store))
                        for c in 0..<commitsEach {
                            for i in 0..<rows {
                                let key = UInt64(w + 2) << 40 | UInt64(c) << 20 | UInt64(i)
                                try await db.upsert(id: key, Self.vector(forKey: key))
                            }
                            try await db.commit()
                            if c == 0 { firstCommitAt.withLock { $0[w] = steadyCommits.withLock { $0 } } }
                        }
                        try await db.close()
                    } catch { failures.withLock { $0.append("writer \(w): \(error)") } }
                }
            }
        }
        #expect(failures.withLock { $0 } == [], "a commit on disjoint keys failed")
        let first = firstCommitAt.withLock { $0 }
        #expect(first.count == others)
        for (w, at) in first { #expect(at < n, "writer \(w) committed first only after \(at) commits of the steady writer") }
        #expect(steadyCommits.withLock { $0 } >= 1)
        // Everything acknowledged is there, once.
        let seen = try await Self.everything(store)
        #expect(seen.count == 1 + (steadyCommits.withLock { $0 } + others * commitsEach) * rows)
    }

    @Test func writersKilledAtRandomPointsNeverLoseAnAcknowledgedCommit() async throws {
        let (url, store) = try await Self.prefix("kills")
        var rng = SeededRNG(seed: 7)
        let kills = 6, rows = 30
        var acked: [(version: UInt64, writer: Int, commit: Int)] = []
        for k in 0..<kills {
            let (p, pipe) = try Self.startWriter(url, writer: k + 1, commits: 1_000, rows: rows)
            try await Task.sleep(nanoseconds: UInt64.random(in: 300_000_000...1_500_000_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            try await offThePool { p.waitUntilExit() }
            acked += try await Self.acks(pipe)
            // After each kill a reader opens and every acknowledged commit is there. On a loaded
            // machine the first writers may be killed before they created the database.
            let seen: [UInt64: SearchResult]
            do {
                seen = try await Self.everything(store)
            } catch let e as VecgoError where e.code == .notFound && acked.isEmpty {
                continue
            }
            for a in acked {
                for i in 0..<rows {
                    let key = UInt64(a.writer) << 40 | UInt64(a.commit) << 20 | UInt64(i)
                    #expect(seen[key]?.vector == Self.vector(forKey: key), "kill \(k): acknowledged key \(key) is missing")
                }
            }
            // Commits are atomic: a batch is there whole or not at all.
            var perBatch: [Int64: Int] = [:]
            for r in seen.values {
                guard case .int(let w)? = r.metadata?["w"], case .int(let c)? = r.metadata?["c"] else { continue }
                perBatch[w << 32 | c, default: 0] += 1
            }
            #expect(perBatch.values.allSatisfy { $0 == rows }, "kill \(k): a commit is visible in part")
        }
        #expect(!acked.isEmpty, "no writer got a commit acknowledged before its kill: nothing was tested")
        let report = try await Vecgo.verify(store)
        #expect(report.ok, "\(report.problems)")
        print("crash test: \(kills) writer processes killed, \(acked.count) acknowledged commits, all present")
    }

    @Test func readersSeeWholeVersionsWhileWritersCompactionAndVacuumRun() async throws {
        let (_, store) = try await Self.prefix("readers")
        let rows = 20, batchesPerWriter = 6
        let setup = try await Vecgo.open(.remote(store), .create(dimension: Self.dimension, metric: .l2))
        for i in 0..<rows { try await setup.upsert(id: UInt64(i), Self.vector(forKey: UInt64(i)), metadata: ["batch": .int(0)]) }
        try await setup.close()
        let writersDone = Locked(0), maintenanceDone = Locked(false)
        let inconsistencies = Locked<[String]>([])
        let reclaimed = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 1...2 {
                group.addTask {
                    defer { writersDone.withLock { $0 += 1 } }
                    let db = try await Vecgo.open(.remote(store), .commitAttempts(50), .maxCommitObjectAge(0.05))
                    for b in 0..<batchesPerWriter {
                        let batch = Int64(w * 100 + b)
                        for i in 0..<rows {
                            let key = UInt64(batch) << 20 | UInt64(i)
                            try await db.upsert(id: key, Self.vector(forKey: key), metadata: ["batch": .int(batch)])
                        }
                        try await db.commit()
                    }
                }
            }
            group.addTask {
                // Compact and vacuum (8 versions kept, 2 s grace; commits re-write objects
                // older than 0.05 s; a grace much closer to that once failed under load, see
                // README "Not done yet") until the writers are done
                // and vacuum has deleted something.
                defer { maintenanceDone.withLock { $0 = true } }  // even when this task fails
                let maintainer = try await Vecgo.open(.remote(store), .maxCommitObjectAge(0.05))
                for _ in 0..<150 {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    do { try await maintainer.compact(maxRows: 10_000) } catch let e as VecgoError where e.code == .conflict {}
                    let r = try await maintainer.vacuum(retainVersions: 8, gracePeriod: 2)
                    reclaimed.withLock { $0 += r.manifestsDeleted + r.objectsDeleted }
                    if writersDone.withLock({ $0 }) == 2 && reclaimed.withLock({ $0 }) > 0 { break }
                }
            }
            group.addTask {
                let reader = try await Vecgo.open(.remote(store), .readOnly)
                for _ in 0..<10_000 where !maintenanceDone.withLock({ $0 }) {
                    try await reader.refresh()
                    var perBatch: [Int64: Int] = [:]
                    for r in try await reader.search(Array(repeating: 0, count: Self.dimension), k: 10_000, include: .metadata) {
                        if case .int(let b)? = r.metadata?["batch"] { perBatch[b, default: 0] += 1 }
                    }
                    let version = await reader.version
                    for (b, n) in perBatch where n != rows {
                        inconsistencies.withLock { $0.append("version \(version): batch \(b) has \(n) of \(rows) rows") }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(reclaimed.withLock { $0 } > 0, "vacuum never deleted anything: the test did not exercise it")
        #expect(inconsistencies.withLock { $0 }.isEmpty, "\(inconsistencies.withLock { $0 }.prefix(5))")
        let final = try await Self.everything(store)
        #expect(final.count == (2 * batchesPerWriter + 1) * rows)
        #expect(try await Vecgo.verify(store).ok)
    }
}
