// Background work (segment builds): every iteration of a parallel loop runs once, from any number
// of callers at once; results and errors come back; and the threads run niced, so searches win.
import Foundation
import IndexCore
import Synchronization
import Testing

@Suite struct BackgroundTests {
    /// The nice value of the calling thread, from /proc (field 19 of its stat line).
    static func threadNice() -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields from the 3rd on follow the command name in parentheses; nice is the 19th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 16 ? Int(fields[16]) : nil
    }

    @Test func everyIterationRunsExactlyOnce() {
        for n in [0, 1, 2, 3, 7, 1000, 10_007] {
            let hits = Mutex([Int](repeating: 0, count: n))
            Background.parallelFor(n) { i in hits.withLock { $0[i] += 1 } }
            #expect(hits.withLock { $0 } == [Int](repeating: 1, count: n), "\(n) iterations")
        }
    }

    @Test func manyCallersAtOnceEachGetTheirOwnIterations() async {
        // Eight loops at once (more callers than workers), each counting its own iterations.
        let totals = await withTaskGroup(of: Int.self) { group in
            for c in 0..<8 {
                group.addTask {
                    let sum = Atomic<Int>(0)
                    Background.parallelFor(500 + c) { i in sum.wrappingAdd(i + 1, ordering: .relaxed) }
                    return sum.load(ordering: .relaxed) - (500 + c) * (501 + c) / 2
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(totals == [Int](repeating: 0, count: 8))
    }

    @Test func aLoopInsideALoopCompletes() {
        let count = Atomic<Int>(0)
        Background.parallelFor(16) { _ in
            Background.parallelFor(16) { _ in count.wrappingAdd(1, ordering: .relaxed) }
        }
        #expect(count.load(ordering: .relaxed) == 256)
    }

    @Test func runReturnsTheValueOrTheErrorOfItsBody() async throws {
        #expect(try await Background.run { 6 * 7 } == 42)
        struct Boom: Error, Equatable {}
        await #expect(throws: Boom.self) { try await Background.run { () throws -> Int in throw Boom() } }
    }

    @Test func backgroundThreadsRunNiced() async throws {
        let here = Self.threadNice()
        #expect(here != nil, "cannot read /proc/thread-self/stat")
        let inRun = try await Background.run { Self.threadNice() }
        #expect(inRun == Int(Background.niceness), "a build thread runs at nice \(Background.niceness), found \(String(describing: inRun))")
        // Iterations run on the caller (niced inside `run`) and the workers: all niced.
        let seen = try await Background.run { () -> Set<Int> in
            let nices = Mutex(Set<Int>())
            Background.parallelFor(64) { _ in
                let n = Self.threadNice() ?? -1
                nices.withLock { _ = $0.insert(n) }
                usleep(200)  // long enough that the workers take some iterations
            }
            return nices.withLock { $0 }
        }
        #expect(seen == [Int(Background.niceness)], "iterations ran at nice values \(seen)")
    }
}
