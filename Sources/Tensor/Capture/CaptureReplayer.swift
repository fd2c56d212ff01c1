import Foundation

/// The bytes a captured forward's activations live in: one allocation, accounted to its
/// device once, handed out in slices as the plan says. It tracks which slices are in use so
/// that a slice is never handed out over one still referenced.
final class ActivationArena: @unchecked Sendable {
    let storage: Storage
    private let lock = NSLock()
    private var live: [Int: Range<Int>] = [:]

    init(bytes: Int, device: Device) throws {
        storage = try CaptureSession.withoutRecording { try Storage(byteCount: bytes, device: device) }
    }

    /// Frees its slice when the storage holding it goes.
    final class Lease {
        let arena: ActivationArena
        let index: Int
        init(_ arena: ActivationArena, _ index: Int) { self.arena = arena; self.index = index }
        deinit { arena.release(index) }
    }

    /// A lease on `range` for allocation `index`, or nil when the range overlaps a slice
    /// still in use (other than `overwriting`, the input an in-place operation takes over).
    func lease(_ index: Int, _ range: Range<Int>, overwriting: Int?) -> Lease? {
        lock.lock(); defer { lock.unlock() }
        for (other, used) in live where other != overwriting && used.overlaps(range) { return nil }
        live[index] = range
        return Lease(self, index)
    }

    func isLive(_ index: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return live[index] != nil
    }

    private func release(_ index: Int) {
        lock.lock(); live[index] = nil; lock.unlock()
    }
}

/// Replays a recording: allocation n gets its planned slice of the arena, operations are
/// checked against the recorded sequence, so a forward that takes another path fails with
/// `CaptureError.diverged` instead of computing in bytes still in use.
final class CaptureReplayer: CaptureSession, @unchecked Sendable {
    private let plan: CapturePlan
    private let arena: ActivationArena
    private var nextAllocation = 0
    private var nextOperation = 0
    /// Inputs taken over in place whose release must have happened before the next operation.
    private var overwritten: [Int] = []
    /// Allocations that could not get their slice (a slice in use longer than recorded).
    private(set) var fallbacks = 0

    init(plan: CapturePlan, arena: ActivationArena, device: Device) {
        self.plan = plan
        self.arena = arena
        super.init(device: device)
    }

    override func allocate(_ byteCount: Int, on device: Device) throws -> CaptureAllocation {
        guard device == self.device else { return .untracked }
        try checkOverwrittenReleased()
        let n = nextAllocation
        guard n < plan.allocationCount, plan.byteCounts[n] == byteCount else {
            let expected = n < plan.allocationCount ? "\(plan.byteCounts[n]) bytes" : "no more allocations"
            throw CaptureError.diverged("allocation \(n) asks for \(byteCount) bytes where the capture recorded \(expected)")
        }
        nextAllocation += 1
        guard let offset = plan.offsets[n] else { return .untracked }
        guard let lease = arena.lease(n, offset..<(offset + byteCount), overwriting: plan.aliases[n]) else {
            fallbacks += 1
            return .untracked
        }
        return .slice(pointer: arena.storage.pointer + offset, lease: lease, index: n)
    }

    override func operation(_ name: String, inputs: [Tensor?], inPlaceSafe: Bool, _ body: () throws -> Tensor) throws -> Tensor {
        try checkOverwrittenReleased()
        let k = nextOperation
        guard k < plan.operationCount, plan.operationNames[k] == name else {
            let expected = k < plan.operationCount ? plan.operationNames[k] : "the end of the forward"
            throw CaptureError.diverged("operation \(k) is \(name) where the capture recorded \(expected)")
        }
        nextOperation += 1
        let output = try body()
        if let input = plan.operationAliases[k] { overwritten.append(input) }
        return output
    }

    /// Checks that the replay went the recorded way to the end.
    func finish() throws {
        try checkOverwrittenReleased()
        guard nextAllocation == plan.allocationCount, nextOperation == plan.operationCount else {
            throw CaptureError.diverged("the forward ended after \(nextOperation) of \(plan.operationCount) operations and \(nextAllocation) of \(plan.allocationCount) allocations")
        }
    }

    private func checkOverwrittenReleased() throws {
        for input in overwritten where arena.isLive(input) {
            throw CaptureError.diverged("allocation \(input) was overwritten in place but is still referenced")
        }
        overwritten.removeAll()
    }
}
