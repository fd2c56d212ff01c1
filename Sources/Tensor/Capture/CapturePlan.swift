/// Where each activation of a captured forward lives in one arena, planned from the
/// recorded lifetimes: buffers whose lifetimes do not overlap share bytes, and an
/// element-wise operation whose input dies right after it writes over that input.
public struct CapturePlan: Sendable {
    /// Bytes of the arena: the planned activation peak of a replay.
    public let arenaBytes: Int
    /// The most bytes the recorded eager forward held at once on the device (activations
    /// and outputs): what the plan is measured against.
    public let eagerPeakBytes: Int
    /// Bytes of the allocations that outlive the forward (its outputs): allocated as usual
    /// in a replay, since the caller keeps them.
    public let outputBytes: Int
    /// Operations recorded, in order.
    public let operationNames: [String]
    /// Operations whose output takes over an input's bytes.
    public let inPlaceCount: Int

    /// Per allocation, in recording order.
    let byteCounts: [Int]
    /// Offset in the arena; nil for outputs and empty allocations.
    let offsets: [Int?]
    /// The input allocation an allocation writes over in place, if any.
    let aliases: [Int?]
    /// Per operation: the input it writes over in place, if any.
    let operationAliases: [Int?]

    public var allocationCount: Int { byteCounts.count }
    public var operationCount: Int { operationNames.count }

    static let alignment = 64

    init(_ trace: CaptureTrace) {
        let allocations = trace.allocations
        let count = allocations.count
        byteCounts = allocations.map(\.byteCount)
        operationNames = trace.operations.map(\.name)

        // In place: the output takes over an input that is released after the operation
        // ended and before anything else happened — the next operation, or the next
        // allocation (a copy outside the backend, such as `contiguous()`, allocates before it
        // reads) — so nothing can have read the input after the output overwrote it.
        var aliases = [Int?](repeating: nil, count: count)
        var operationAliases = [Int?](repeating: nil, count: trace.operations.count)
        var takenOver = Set<Int>()
        // When operations began and allocations were made, in order: what "anything else" is.
        let starts = (allocations.map(\.allocatedAt) + trace.operations.map(\.startedAt)).sorted()
        func firstStart(after time: Int) -> Int {
            var (low, high) = (0, starts.count)
            while low < high {
                let mid = (low + high) / 2
                if starts[mid] > time { high = mid } else { low = mid + 1 }
            }
            return low < starts.count ? starts[low] : Int.max
        }
        for (k, op) in trace.operations.enumerated() {
            guard let output = op.output, allocations[output].freedAt != nil else { continue }
            let nextStart = firstStart(after: op.endedAt)
            for input in op.inPlaceCandidates where !takenOver.contains(input) {
                guard let freed = allocations[input].freedAt, freed > op.endedAt, freed < nextStart,
                      allocations[input].byteCount == allocations[output].byteCount else { continue }
                aliases[output] = input
                operationAliases[k] = input
                takenOver.insert(input)
                break
            }
        }
        self.aliases = aliases
        self.operationAliases = operationAliases
        inPlaceCount = operationAliases.compactMap { $0 }.count

        // Buffers: chains of in-place allocations share one, living from the first's
        // allocation to the last's release.
        var root = Array(0..<count)
        for i in 0..<count { if let a = aliases[i] { root[i] = root[a] } }
        struct Buffer { var start: Int, end: Int, size: Int }
        var buffers: [Int: Buffer] = [:]
        for (i, a) in allocations.enumerated() where a.byteCount > 0 {
            guard let freed = a.freedAt else { continue }
            let padded = (a.byteCount + Self.alignment - 1) / Self.alignment * Self.alignment
            let r = root[i]
            if let b = buffers[r] {
                buffers[r] = Buffer(start: min(b.start, a.allocatedAt), end: max(b.end, freed), size: max(b.size, padded))
            } else {
                buffers[r] = Buffer(start: a.allocatedAt, end: freed, size: padded)
            }
        }

        // Greedy by size, largest first, each at the lowest offset clear of the buffers
        // already placed whose lifetimes overlap its own.
        let order = buffers.sorted { ($0.value.size, -$0.value.start) > ($1.value.size, -$1.value.start) }
        var placed: [(offset: Int, buffer: Buffer)] = []
        var bufferOffset: [Int: Int] = [:]
        var arena = 0
        for (r, buffer) in order {
            let conflicts = placed.filter { $0.buffer.start < buffer.end && buffer.start < $0.buffer.end }
                .sorted { $0.offset < $1.offset }
            var offset = 0
            for c in conflicts {
                if offset + buffer.size <= c.offset { break }
                offset = max(offset, c.offset + c.buffer.size)
            }
            placed.append((offset, buffer))
            bufferOffset[r] = offset
            arena = max(arena, offset + buffer.size)
        }
        offsets = (0..<count).map { bufferOffset[root[$0]] }
        arenaBytes = arena

        // The eager peak, replayed from the event clock.
        var events: [(time: Int, delta: Int)] = []
        for a in allocations {
            events.append((a.allocatedAt, a.byteCount))
            if let freed = a.freedAt { events.append((freed, -a.byteCount)) }
        }
        var live = 0, peak = 0
        for event in events.sorted(by: { $0.time < $1.time }) { live += event.delta; peak = max(peak, live) }
        eagerPeakBytes = peak
        outputBytes = allocations.filter { $0.freedAt == nil }.reduce(0) { $0 + $1.byteCount }
    }
}
