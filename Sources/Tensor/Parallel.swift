import Dispatch
import Foundation

/// Work splitting over the machine's cores for the Swift kernels.
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
    @inlinable
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * per
            let end = min(count, start + per)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body(i)` for each `i` in `0..<count` on at most `threadCount` threads, items
    /// dealt out one at a time (for items of uneven cost).
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(threadCount, count)
        if workers == 1 { for i in 0..<count { body(i) }; return }
        nonisolated(unsafe) let body = body
        let next = ItemCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let i = next.take(below: count) { body(i) }
        }
    }
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
