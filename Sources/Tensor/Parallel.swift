import CDNNL
import Foundation

/// Work splitting over the machine's cores for the Swift kernels. Loops run on oneDNN's
/// OpenMP thread team (see Sources/CDNNL/shim.h), so kernels and oneDNN primitives share
/// one set of threads. Called inside a parallel region, a loop runs on the calling thread.
public enum Parallel {
    /// Threads the kernels use: `DIFFUSERS_NUM_THREADS`, else the number of active cores.
    public static let threadCount: Int = {
        if let text = ProcessInfo.processInfo.environment["DIFFUSERS_NUM_THREADS"], let n = Int(text), n > 0 {
            return n
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body(range)` over `0..<count` split into contiguous chunks, in parallel when
    /// the work is large enough. `grain` is the least number of items worth a thread.
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0, !MemoryRehearsal.skipsWork else { return }
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 { body(0..<count); return }
        run(threads: chunks) { thread, threads in
            var c = thread
            while c < chunks {
                let range = part(c, of: chunks, splitting: count)
                if !range.isEmpty { body(range) }
                c += threads
            }
        }
    }

    /// Part `index` of `0..<count` split into `parts` contiguous ranges whose sizes differ by
    /// at most one. Every kernel that splits work into a fixed number of parts takes its
    /// ranges from here: rounding the part size up instead (⌈count/parts⌉ each) makes the
    /// trailing parts start past the end whenever (parts-1)·⌈count/parts⌉ > count.
    @inline(__always)
    public static func part(_ index: Int, of parts: Int, splitting count: Int) -> Range<Int> {
        precondition(parts > 0 && (0..<parts).contains(index), "part \(index) of \(parts)")
        // Multiplying first stays exact: the counts here are element or pixel counts.
        return (index * count / parts)..<((index + 1) * count / parts)
    }

    /// Runs `body(i)` for each `i` in `0..<count` on at most `threadCount` threads, items
    /// dealt out one at a time (for items of uneven cost).
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachWorker(count) { next in while let i = next() { body(i) } }
    }

    /// Runs `worker(next)` once on each of at most `threadCount` threads; `next()` deals out
    /// the items of `0..<count` one at a time, nil when none is left. A worker sets up what its
    /// items share (scratch, bound primitives) once, however many items it takes.
    public static func forEachWorker(_ count: Int, _ worker: (_ next: () -> Int?) -> Void) {
        guard count > 0 else { return }
        let workers = min(threadCount, count)
        if MemoryRehearsal.skipsWork {
            // A rehearsal: each worker sets up its scratch and takes one item of its own (what it
            // binds lazily is allocated too; the products in it skip their work), then finds none
            // left. Each `next` waits for every worker to reach it (at most a tenth of a second: a
            // worker that stopped on an error never comes), so that all of their scratch is alive
            // at once, as in a real run where they work side by side.
            let arrivals = ItemCounter()
            if workers == 1 { var given = false; worker { defer { given = true }; return given ? nil : 0 }; return }
            run(threads: workers) { thread, _ in
                var calls = 0
                worker {
                    calls += 1
                    _ = arrivals.take(below: .max)
                    let deadline = DispatchTime.now().uptimeNanoseconds + 100_000_000
                    while arrivals.count < calls * workers, DispatchTime.now().uptimeNanoseconds < deadline { sched_yield() }
                    return calls == 1 ? thread : nil
                }
            }
            return
        }
        let next = ItemCounter()
        if workers == 1 { worker { next.take(below: count) }; return }
        run(threads: workers) { _, _ in worker { next.take(below: count) } }
    }

    /// Runs `body` once on every thread of the kernels' OpenMP team (thread-local state such as
    /// the floating-point control register).
    static func onEveryThread(_ body: () -> Void) {
        run(threads: threadCount) { _, _ in body() }
    }

    /// Runs `body(thread, threads)` once on each thread of an OpenMP team of `threads`.
    private static func run(threads: Int, _ body: (Int, Int) -> Void) {
        // Which items the calling thread takes varies from run to run: what the bodies
        // allocate is not part of a graph capture.
        CaptureSession.withoutRecording { withoutActuallyEscaping(body) { body in
            var region = Region(body: body)
            withUnsafeMutablePointer(to: &region) { pointer in
                GOMP_parallel(regionEntry, pointer, UInt32(threads), 0)
            }
        } }
    }
}

/// What a parallel region runs, passed through libgomp's `void *` argument.
private struct Region {
    let body: (Int, Int) -> Void
}

private func regionEntry(_ argument: UnsafeMutableRawPointer?) {
    guard let region = argument?.assumingMemoryBound(to: Region.self) else { return }
    region.pointee.body(Int(omp_get_thread_num()), Int(omp_get_num_threads()))
}

/// Hands out 0, 1, 2, ... to competing threads.
final class ItemCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    var count: Int { lock.lock(); defer { lock.unlock() }; return value }

    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
