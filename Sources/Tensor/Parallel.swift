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
    /// dealt out one at a time (for items of uneven cost). A rehearsal skips it, as it skips
    /// `forEachChunk`: the bodies compute, they allocate nothing on a device.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard !MemoryRehearsal.skipsWork else { return }
        let next = ItemCounter(), threads = threadsFor(count)
        guard threads > 1 else { while let i = next.take(below: count) { body(i) }; return }
        run(threads: threads) { _, _ in while let i = next.take(below: count) { body(i) } }
    }

    /// Runs `work(scratch, next)` once on each of at most `threadCount` threads; `next()` deals
    /// out the items of `0..<count` one at a time, nil when none is left. Each thread first sets
    /// up what its items share (`setUp`: scratch, bound primitives, on the computing device's
    /// allocator) and waits until every thread of the team has, so that all of their scratch is
    /// alive at once whichever thread takes which items: a run's peak is the same from run to
    /// run, and the one a rehearsal accounts (it sets up each thread's scratch and skips the
    /// work). `work` itself must allocate nothing on a device. Throws the first error of any thread.
    public static func forEachWorker<Scratch>(_ count: Int, setUp: () throws -> Scratch,
                                              _ work: (Scratch, _ next: () -> Int?) throws -> Void) throws {
        let workers = threadsFor(count)
        guard workers > 0 else { return }
        if MemoryRehearsal.skipsWork {
            let scratch = try (0..<workers).map { _ in try setUp() }
            withExtendedLifetime(scratch) {}
            return
        }
        let next = ItemCounter()
        if workers == 1 { try work(try setUp(), { next.take(below: count) }); return }
        let arrivals = ItemCounter(), failure = ErrorBox()
        run(threads: workers) { _, threads in
            let scratch = Result { try setUp() }
            _ = arrivals.take(below: .max)
            while arrivals.count < threads { sched_yield() }
            do {
                try work(scratch.get()) { failure.error == nil ? next.take(below: count) : nil }
            } catch {
                failure.record(error)
            }
        }
        if let error = failure.error { throw error }
    }

    /// Threads a loop over `count` items runs on: one inside a parallel region (libgomp gives
    /// a nested region a team of one), else at most `threadCount`.
    private static func threadsFor(_ count: Int) -> Int {
        count <= 0 ? 0 : omp_in_parallel() != 0 ? 1 : min(threadCount, count)
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

/// The first error any thread of a parallel loop met.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
    func record(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
}
