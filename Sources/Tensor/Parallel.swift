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
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        run(threads: chunks) { thread, threads in
            var c = thread
            while c < chunks {
                let start = c * per, end = min(count, start + per)
                if start < end { body(start..<end) }
                c += threads
            }
        }
    }

    /// Runs `body(i)` for each `i` in `0..<count` on at most `threadCount` threads, items
    /// dealt out one at a time (for items of uneven cost).
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(threadCount, count)
        if workers == 1 { for i in 0..<count { body(i) }; return }
        let next = ItemCounter()
        run(threads: workers) { _, _ in
            while let i = next.take(below: count) { body(i) }
        }
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

    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
