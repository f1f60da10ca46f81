// Many transfers at once through S3Store: they share a few threads, not one each.
import Foundation
@testable import Stores
import Synchronization
import Testing
import _VecgoTestSupport

@Suite struct ConcurrentTransferTests {
    /// Threads in this process now (entries of /proc/self/task).
    static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    /// A 64 KiB object the server serves ranges of.
    static let object: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    /// Answers `Range: bytes=a-b` from ``object`` with 206.
    static func rangeAnswer(_ r: LocalHTTPServer.Request) -> LocalHTTPServer.Response {
        guard let spec = r.headers["range"]?.split(separator: "=").last?.split(separator: "-"),
              spec.count == 2, let lo = Int(spec[0]), let hi = Int(spec[1]) else { return .init(400, "no range") }
        var answer = LocalHTTPServer.Response(206, "", headers: [("Content-Range", "bytes \(lo)-\(hi)/\(object.count)")])
        answer.body = Array(object[lo...min(hi, object.count - 1)])
        return answer
    }

    @Test func twoHundredFiftySixRangedReadsInFlightTogetherUseABoundedNumberOfThreads() async throws {
        let n = 256, size = 65_536
        let threadsWhileAllInFlight = Mutex(0)
        // The server answers nothing until all 256 requests are open at once, so the reads are
        // certainly in flight together while the thread count is taken.
        let server = try LocalHTTPServer(holdUntil: n, holdLimitSeconds: 30) { r in
            threadsWhileAllInFlight.withLock { $0 = max($0, Self.threadCount()) }
            return Self.rangeAnswer(r)
        }
        var c = S3Configuration(bucket: "b", endpoint: server.url, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"))
        c.retry.setAttempts(1)
        c.stallTimeoutSeconds = 0  // the server holds every answer (up to 30 s) on purpose
        let store = try S3Store(c)
        let before = Self.threadCount()
        let sampled = Mutex(0)
        let done = Atomic<Bool>(false)
        let sampler = Task {
            while !done.load(ordering: .relaxed) {
                let t = Self.threadCount()
                sampled.withLock { $0 = max($0, t) }
                try? await Task.sleep(nanoseconds: 2_000_000)
            }
        }
        let start = ContinuousClock.now
        let reads = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for i in 0..<n {
                let lo = UInt64((i * 4099) % (Self.object.count - size))
                group.addTask { (i, try await store.read("big.bin", range: lo..<(lo + UInt64(size)))) }
            }
            var out = [[UInt8]](repeating: [], count: n)
            for try await (i, bytes) in group { out[i] = bytes }
            return out
        }
        let elapsed = ContinuousClock.now - start
        done.store(true, ordering: .relaxed)
        await sampler.value
        for (i, bytes) in reads.enumerated() {
            let lo = (i * 4099) % (Self.object.count - size)
            #expect(bytes == Array(Self.object[lo..<(lo + size)]), "read \(i) came back wrong")
        }
        let peak = max(sampled.withLock { $0 }, threadsWhileAllInFlight.withLock { $0 })
        print("ConcurrentTransferTests: \(n) reads of \(size) bytes in \(elapsed); threads before \(before), "
              + "while all in flight \(threadsWhileAllInFlight.withLock { $0 }), peak sampled \(sampled.withLock { $0 }); "
              + "server saw \(server.peakOpenConnections) connections open at once")
        #expect(server.peakOpenConnections >= n, "only \(server.peakOpenConnections) of \(n) reads were in flight together")
        // Other suites run in this process at the same time and have threads of their own: the
        // bound is on growth. A thread per transfer would need about 256 more.
        #expect(peak - before < 64, "\(n) concurrent reads ran on \(peak) threads (\(before) before they began)")
    }
}
