import NN
import Tensor

extension UNet2DConditionModel {
    /// The inputs a captured UNet is specialised to.
    public struct InputShapes: Sendable, Equatable {
        public var sample: TensorSpec
        public var timestep: TensorSpec
        public var encoderHiddenStates: TensorSpec

        public init(sample: TensorSpec, timestep: TensorSpec = TensorSpec([1]), encoderHiddenStates: TensorSpec) {
            self.sample = sample
            self.timestep = timestep
            self.encoderHiddenStates = encoderHiddenStates
        }

        /// The specs of these tensors.
        public init(sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor) {
            self.init(sample: TensorSpec(of: sample), timestep: TensorSpec(of: timestep),
                      encoderHiddenStates: TensorSpec(of: encoderHiddenStates))
        }
    }

    /// The forward as a capture replays it: inputs sample, timestep, encoder hidden states.
    private var capturableForward: ([Tensor]) throws -> Tensor {
        { inputs in try self(inputs[0], timestep: inputs[1], encoderHiddenStates: inputs[2]) }
    }

    /// The UNet's forward captured for `inputShapes` (see `Module.capture`): the returned
    /// callable replays it with its activations planned into one arena.
    public func capture(inputShapes: InputShapes) throws -> CapturedUNet2DConditionModel {
        let forward = try capture(inputs: [inputShapes.sample, inputShapes.timestep, inputShapes.encoderHiddenStates],
                                  forward: capturableForward)
        return CapturedUNet2DConditionModel(inputShapes: inputShapes, forward: forward)
    }

    /// Captures the forward while it computes this call (see `Module.captureRecording`):
    /// the captured UNet and this call's prediction.
    public func captureRecording(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor)
        throws -> (captured: CapturedUNet2DConditionModel, output: Tensor) {
        let (forward, output) = try captureRecording([sample, timestep, encoderHiddenStates], forward: capturableForward)
        let shapes = InputShapes(sample: sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
        return (CapturedUNet2DConditionModel(inputShapes: shapes, forward: forward), output)
    }
}

/// A `UNet2DConditionModel` forward captured for fixed input shapes.
public final class CapturedUNet2DConditionModel: @unchecked Sendable {
    public let inputShapes: UNet2DConditionModel.InputShapes
    public let forward: CapturedForward<Tensor>
    public var plan: CapturePlan { forward.plan }

    init(inputShapes: UNet2DConditionModel.InputShapes, forward: CapturedForward<Tensor>) {
        self.inputShapes = inputShapes
        self.forward = forward
    }

    /// The prediction, as `UNet2DConditionModel.callAsFunction`, replayed.
    public func callAsFunction(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        try forward([sample, timestep, encoderHiddenStates])
    }
}
