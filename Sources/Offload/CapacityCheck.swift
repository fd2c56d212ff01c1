import NN
import Tensor

extension Device {
    /// Bytes this device can still allocate; nil when it has no capacity limit.
    var freeBytes: Int? { allocator.capacity.map { max(0, $0 - allocator.bytesInUse) } }

    /// Throws `insufficientCapacity` when the largest of `groups` — the weights a strategy
    /// brings here at once — cannot fit in what is free now: a clear error when the strategy
    /// is applied instead of an out-of-memory error mid-run. (Activations need room too;
    /// this checks what planning can know.)
    func requireRoom(forLargestOf groups: [ParameterGroup], strategy: String) throws {
        guard let free = freeBytes, let largest = groups.max(by: { $0.byteCount < $1.byteCount }),
              largest.byteCount > free else { return }
        throw OffloadError.insufficientCapacity(device: "\(self)", unit: largest.id, unitBytes: largest.byteCount,
                                                freeBytes: free, strategy: strategy)
    }
}
