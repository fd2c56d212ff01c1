import Foundation

/// What a recording saw: the allocations on the capture's device in order, with the moment
/// each was made and released, and the operations in between.
struct CaptureTrace: Sendable {
    struct Allocation: Sendable {
        var byteCount: Int
        var allocatedAt: Int
        /// nil: still alive when the recording ended (an output, or kept by the caller).
        var freedAt: Int?
    }
    struct Operation: Sendable {
        var name: String
        var startedAt: Int
        var endedAt: Int
        /// The allocation the operation returned, when it made it.
        var output: Int?
        /// Inputs whose bytes the output could take over (same layout, in-place-safe kernel).
        var inPlaceCandidates: [Int]
    }
    var allocations: [Allocation] = []
    var operations: [Operation] = []
}

/// Records one eager forward: every allocation on the device (made as usual) and every
/// backend operation, stamped on one event clock.
final class CaptureRecorder: CaptureSession, @unchecked Sendable {
    private let lock = NSLock()
    private var clock = 0
    private var finished = false
    private var trace = CaptureTrace()

    /// Reports a recorded allocation's release when its storage goes.
    private final class Token {
        weak var recorder: CaptureRecorder?
        let index: Int
        init(_ recorder: CaptureRecorder, _ index: Int) { self.recorder = recorder; self.index = index }
        deinit { recorder?.released(index) }
    }

    private func tick() -> Int { clock += 1; return clock }

    override func allocate(_ byteCount: Int, on device: Device) throws -> CaptureAllocation {
        guard device == self.device else { return .untracked }
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return .untracked }
        let index = trace.allocations.count
        trace.allocations.append(.init(byteCount: byteCount, allocatedAt: tick(), freedAt: nil))
        return .recorded(token: Token(self, index), index: index)
    }

    private func released(_ index: Int) {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        trace.allocations[index].freedAt = tick()
    }

    override func operation(_ name: String, inputs: [Tensor?], inPlaceSafe: Bool, _ body: () throws -> Tensor) throws -> Tensor {
        lock.lock(); let start = tick(); lock.unlock()
        let output = try body()
        lock.lock(); defer { lock.unlock() }
        var made: Int?
        if let index = output.storage.captureIndex, index < trace.allocations.count,
           trace.allocations[index].allocatedAt > start { made = index }
        var candidates: [Int] = []
        if inPlaceSafe, let made {
            for case let input? in inputs {
                guard let index = input.storage.captureIndex, index != made, index < trace.allocations.count,
                      input.isContiguous || input.isChannelsLast, input.strides == output.strides, input.offset == 0,
                      input.shape == output.shape, input.dtype == output.dtype,
                      input.storage.byteCount == output.storage.byteCount else { continue }
                candidates.append(index)
            }
        }
        trace.operations.append(.init(name: name, startedAt: start, endedAt: tick(), output: made, inPlaceCandidates: candidates))
        return output
    }

    /// Ends the recording: allocations still alive now stay unreleased in the trace.
    func finish() -> CaptureTrace {
        lock.lock(); defer { lock.unlock() }
        finished = true
        return trace
    }
}
