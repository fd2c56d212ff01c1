import Foundation

/// Errors of capturing and replaying a forward.
public enum CaptureError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The inputs given to a replay differ from the captured ones.
    case inputMismatch(String)
    /// A capture needs every dimension fixed.
    case dynamicShape(String)
    /// The replay did not follow the recorded sequence of operations and allocations.
    case diverged(String)
    /// A capture or replay was started inside another one on the same thread.
    case nested(String)

    public var description: String {
        switch self {
        case .inputMismatch(let message): return "the captured graph cannot run these inputs: \(message)"
        case .dynamicShape(let message): return "cannot capture a dynamic shape: \(message)"
        case .diverged(let message): return "the replay left the captured graph: \(message)"
        case .nested(let message): return message
        }
    }
}

/// A forward recorded once and replayed with its activations planned into one arena — what
/// `torch.jit.trace` and a CUDA graph's private memory pool give PyTorch, for eager Swift code.
/// Replays run the same kernels on the same values, so they equal the eager result bit for
/// bit; what changes is where the activations live.
public final class GraphCapture: @unchecked Sendable {
    public let plan: CapturePlan
    public let device: Device
    private let arena: ActivationArena
    private let lock = NSLock()
    /// Allocations of the last replay that found their slice still in use and were made
    /// outside the arena.
    public private(set) var lastReplayFallbacks = 0

    private init(plan: CapturePlan, device: Device, arena: ActivationArena) {
        self.plan = plan
        self.device = device
        self.arena = arena
    }

    /// Runs `body` once, eagerly, recording the activations it allocates on `device` and the
    /// operations it runs, then plans the arena (allocated here, accounted to `device`).
    /// Run `body` once before so that caches filled on a first call are not recorded.
    public static func record<Result>(on device: Device, _ body: () throws -> Result) throws -> (GraphCapture, Result) {
        let recorder = CaptureRecorder(device: device)
        let (trace, result) = try CaptureSession.with(recorder) {
            let result = try body()
            return (recorder.finish(), result)
        }
        let plan = CapturePlan(trace)
        let arena = try ActivationArena(bytes: plan.arenaBytes, device: device)
        return (GraphCapture(plan: plan, device: device, arena: arena), result)
    }

    /// Runs `body` (the same forward, on inputs of the captured shapes) with its activations
    /// in the arena. One replay at a time: concurrent callers wait.
    public func replay<Result>(_ body: () throws -> Result) throws -> Result {
        lock.lock(); defer { lock.unlock() }
        let replayer = CaptureReplayer(plan: plan, arena: arena, device: device)
        let result = try CaptureSession.with(replayer) {
            let result = try body()
            try replayer.finish()
            return result
        }
        lastReplayFallbacks = replayer.fallbacks
        return result
    }

    /// Runs `body` outside any capture or replay on this thread: what it allocates and
    /// computes is not part of the graph (hooks that move or cast weights use this).
    public static func excluding<Result>(_ body: () throws -> Result) rethrows -> Result {
        try CaptureSession.withoutRecording(body)
    }
}
