import Tensor

/// The shape, dtype and device of one input of a captured forward.
public struct TensorSpec: Sendable, Equatable, CustomStringConvertible {
    public var shape: [Int]
    public var dtype: DType
    public var device: Device

    public init(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) {
        self.shape = shape
        self.dtype = dtype
        self.device = device
    }

    /// The spec `tensor` meets.
    public init(of tensor: Tensor) { self.init(tensor.shape, dtype: tensor.dtype, device: tensor.device) }

    public var description: String { "\(dtype) \(shape) on \(device)" }
}

/// A module's forward captured for fixed inputs (see `Module.capture`): calling it replays
/// the forward with every activation in the planned arena. Hooks on the module tree fire
/// as in an eager call, so offloading and layerwise casting keep working.
public final class CapturedForward<Output>: @unchecked Sendable {
    public let inputs: [TensorSpec]
    public let graph: GraphCapture
    /// The plan, known before the first replay: arena bytes (the planned activation peak),
    /// the recorded eager peak, operations and in-place reuses.
    public var plan: CapturePlan { graph.plan }
    private let forward: ([Tensor]) throws -> Output

    init(inputs: [TensorSpec], graph: GraphCapture, forward: @escaping ([Tensor]) throws -> Output) {
        self.inputs = inputs
        self.graph = graph
        self.forward = forward
    }

    /// Replays the forward on `values`, which must match the captured specs exactly.
    public func callAsFunction(_ values: [Tensor]) throws -> Output {
        guard values.count == inputs.count else {
            throw CaptureError.inputMismatch("\(values.count) inputs given, \(inputs.count) captured")
        }
        for (i, (value, spec)) in zip(values, inputs).enumerated() where TensorSpec(of: value) != spec {
            throw CaptureError.inputMismatch("input \(i) is \(TensorSpec(of: value)), captured as \(spec)")
        }
        return try graph.replay { try forward(values) }
    }
}

extension Module {
    /// Captures `forward` for inputs of `specs`: runs it on zero inputs twice — a warm-up
    /// (so that caches filled on a first call, such as packed convolution weights, are not
    /// taken for activations), then once recorded — and plans its activations into one arena
    /// on this module's execution device. Every dimension must be fixed: a negative one is
    /// a dynamic shape and an error. The forward must take the same path for any input
    /// values (no data-dependent branches); a replay that does not is an error, never a
    /// wrong answer.
    public func capture<Output>(inputs specs: [TensorSpec],
                                forward: @escaping ([Tensor]) throws -> Output) throws -> CapturedForward<Output> {
        for (i, spec) in specs.enumerated() {
            if let axis = spec.shape.firstIndex(where: { $0 < 0 }) {
                throw CaptureError.dynamicShape("dimension \(axis) of input \(i) (\(spec.shape)) is not fixed")
            }
        }
        let zeros = try specs.map { try Tensor.zeros($0.shape, dtype: $0.dtype, device: $0.device) }
        _ = try forward(zeros)
        return try captureRecording(zeros, forward: forward).captured
    }

    /// Captures `forward` while it computes on `values` (for a caller that already ran it once
    /// on inputs like these, such as a denoising loop's first step): returns the captured
    /// forward, specialised to the specs of `values`, and this call's output.
    public func captureRecording<Output>(_ values: [Tensor], forward: @escaping ([Tensor]) throws -> Output)
        throws -> (captured: CapturedForward<Output>, output: Output) {
        let (graph, output) = try GraphCapture.record(on: executionDevice) { try forward(values) }
        return (CapturedForward(inputs: values.map(TensorSpec.init(of:)), graph: graph, forward: forward), output)
    }
}
