import Foundation

/// Freed blocks of an allocator kept for reuse, as PyTorch's caching allocator
/// keeps freed device memory: a block of the same size is handed out again without asking
/// the OS for fresh pages, which would be faulted in and zeroed once more — on every onload of
/// an offloaded layer. Only large blocks are kept (small ones are malloc's business), at most
/// `limit` bytes, the longest-cached going first. Not thread-safe: the allocator's lock guards it.
final class BlockCache {
    static let minimumBlock = 1 << 20

    private var blocks: [Int: [UnsafeMutableRawPointer]] = [:]
    /// Cached blocks, oldest first (for eviction).
    private var order: [(size: Int, pointer: UnsafeMutableRawPointer)] = []
    private(set) var bytes = 0

    /// A cached block of exactly `size` bytes, if any.
    func take(_ size: Int) -> UnsafeMutableRawPointer? {
        guard size >= BlockCache.minimumBlock, var list = blocks[size], let pointer = list.popLast() else { return nil }
        blocks[size] = list.isEmpty ? nil : list
        if let index = order.firstIndex(where: { $0.pointer == pointer }) { order.remove(at: index) }
        bytes -= size
        return pointer
    }

    /// Keeps `pointer` (a block of `size` bytes) if it is large enough, evicting the oldest
    /// blocks beyond `limit`; returns the blocks to free (possibly `pointer` itself).
    func keep(_ pointer: UnsafeMutableRawPointer, size: Int, limit: Int) -> [UnsafeMutableRawPointer] {
        guard size >= BlockCache.minimumBlock, size <= limit else { return [pointer] }
        blocks[size, default: []].append(pointer)
        order.append((size, pointer))
        bytes += size
        return evict(downTo: limit)
    }

    /// Evicts the oldest blocks until at most `limit` bytes stay cached; returns them to free.
    func evict(downTo limit: Int) -> [UnsafeMutableRawPointer] {
        var evicted: [UnsafeMutableRawPointer] = []
        while bytes > max(limit, 0), !order.isEmpty {
            let oldest = order.removeFirst()
            if var list = blocks[oldest.size], let index = list.firstIndex(of: oldest.pointer) {
                list.remove(at: index)
                blocks[oldest.size] = list.isEmpty ? nil : list
            }
            bytes -= oldest.size
            evicted.append(oldest.pointer)
        }
        return evicted
    }

    /// Every cached block, to free (the cache is then empty).
    func drain() -> [UnsafeMutableRawPointer] {
        let all = order.map(\.pointer)
        blocks.removeAll()
        order.removeAll()
        bytes = 0
        return all
    }
}
