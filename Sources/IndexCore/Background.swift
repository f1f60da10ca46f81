// Background work: segment builds (k-means, codes, graphs, encoding) on threads of their own at
// a lower scheduling priority, so searches in the same process keep the cores while a build runs.
internal import CVecgoNative
import Dispatch
import Foundation
import Synchronization

/// Heavy work that must not hold up searches: a commit's or a compaction's segment build.
///
/// Swift's cooperative pool has one thread per core, and `DispatchQueue.concurrentPerform`
/// takes the same threads: a build that ran there left searches queued behind whole k-means
/// passes (50 ms stalls every 60 ms during a 100 000-row commit on 2 cores). Background work
/// runs on threads outside that pool instead, niced (``niceness``), so the kernel runs a
/// search's thread first whenever both want a core, and a build on an idle machine still
/// uses every core.
public enum Background {
    /// The nice value of background threads (0 is normal, 19 the lowest).
    public static let niceness: Int32 = 10

    /// Runs `body` on a new background thread and returns what it returns. The calling task is
    /// suspended meanwhile, holding no thread of the cooperative pool.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            detach { done.resume(with: Result { try body() }) }
        }
    }

    /// Starts `body` on a new background thread and returns at once.
    public static func detach(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            _ = vecgo_set_thread_nice(niceness)
            body()
        }
        thread.stackSize = 8 << 20  // a graph build recurses little, but callers' closures are deep
        thread.name = "vecgo.build"
        thread.start()
    }

    /// Calls `body(i)` once for every `i` in `0..<iterations`, spread over the calling thread
    /// and the background workers (one per core beyond the first), and returns when all have
    /// returned: `concurrentPerform` at background priority. Iterations must be independent.
    public static func parallelFor(_ iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard iterations > 1, let pool = Pool.shared else {
            for i in 0..<iterations { body(i) }
            return
        }
        let job = Job(iterations: iterations, body: body)
        pool.submit(job)
        job.work()
        job.finished.wait()
        pool.retire(job)
    }

    /// One `parallelFor`: its iterations are handed out one at a time to whoever asks.
    final class Job: Sendable {
        let iterations: Int
        let body: @Sendable (Int) -> Void
        private let next = Atomic<Int>(0)
        private let completed = Atomic<Int>(0)
        /// Signalled once, when the last iteration returned.
        let finished = DispatchSemaphore(value: 0)

        init(iterations: Int, body: @escaping @Sendable (Int) -> Void) {
            self.iterations = iterations
            self.body = body
        }

        /// Whether every iteration has been handed out.
        var exhausted: Bool { next.load(ordering: .relaxed) >= iterations }

        /// Runs iterations until none is left to hand out.
        func work() {
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < iterations else { return }
                body(i)
                if completed.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == iterations { finished.signal() }
            }
        }
    }

    /// The background workers: parked until a job is submitted, then taking its iterations.
    final class Pool: Sendable {
        /// None on a machine with one core (the caller does all the work).
        static let shared: Pool? = {
            let workers = ProcessInfo.processInfo.activeProcessorCount - 1
            return workers > 0 ? Pool(workers: workers) : nil
        }()

        private let jobs = Mutex<[Job]>([])
        private let wake = DispatchSemaphore(value: 0)
        let workers: Int

        private init(workers: Int) {
            self.workers = workers
            for w in 0..<workers {
                let thread = Thread { [self] in
                    _ = vecgo_set_thread_nice(Background.niceness)
                    while true {
                        wake.wait()
                        while let job = jobs.withLock({ $0.first { !$0.exhausted } }) { job.work() }
                    }
                }
                thread.name = "vecgo.worker.\(w)"
                thread.start()
            }
        }

        func submit(_ job: Job) {
            jobs.withLock { $0.append(job) }
            for _ in 0..<min(workers, job.iterations - 1) { wake.signal() }
        }

        func retire(_ job: Job) {
            jobs.withLock { $0.removeAll { $0 === job } }
        }
    }
}
