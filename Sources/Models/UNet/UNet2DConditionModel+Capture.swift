import NN
import Tensor

extension UNet2DConditionModel {
    /// The inputs a captured UNet is specialised to.
    public struct InputShapes: Sendable, Equatable {
        public var sample: TensorSpec
        public var timestep: TensorSpec
        public var encoderHiddenStates: TensorSpec
        /// The added conditions' text embeds and time ids (SDXL), nil for a UNet without them.
        public var addedConditions: (textEmbeds: TensorSpec, timeIds: TensorSpec)?

        public init(sample: TensorSpec, timestep: TensorSpec = TensorSpec([1]), encoderHiddenStates: TensorSpec,
                    addedConditions: (textEmbeds: TensorSpec, timeIds: TensorSpec)? = nil) {
            self.sample = sample
            self.timestep = timestep
            self.encoderHiddenStates = encoderHiddenStates
            self.addedConditions = addedConditions
        }

        /// The specs of these tensors.
        public init(sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor, addedConditions: AddedConditions? = nil) {
            self.init(sample: TensorSpec(of: sample), timestep: TensorSpec(of: timestep),
                      encoderHiddenStates: TensorSpec(of: encoderHiddenStates),
                      addedConditions: addedConditions.map { (TensorSpec(of: $0.textEmbeds), TensorSpec(of: $0.timeIds)) })
        }

        public static func == (a: InputShapes, b: InputShapes) -> Bool {
            a.sample == b.sample && a.timestep == b.timestep && a.encoderHiddenStates == b.encoderHiddenStates
                && a.addedConditions?.textEmbeds == b.addedConditions?.textEmbeds && a.addedConditions?.timeIds == b.addedConditions?.timeIds
        }

        /// The specs in the order the captured forward takes its inputs.
        var specs: [TensorSpec] {
            [sample, timestep, encoderHiddenStates] + (addedConditions.map { [$0.textEmbeds, $0.timeIds] } ?? [])
        }
    }

    /// The forward as a capture replays it: inputs sample, timestep, encoder hidden states, then
    /// the added conditions' text embeds and time ids when there are five.
    private var capturableForward: ([Tensor]) throws -> Tensor {
        { inputs in
            try self(inputs[0], timestep: inputs[1], encoderHiddenStates: inputs[2],
                     addedConditions: inputs.count == 5 ? AddedConditions(textEmbeds: inputs[3], timeIds: inputs[4]) : nil)
        }
    }

    /// The UNet's forward captured for `inputShapes` (see `Module.capture`): the returned
    /// callable replays it with its activations planned into one arena.
    public func capture(inputShapes: InputShapes) throws -> CapturedUNet2DConditionModel {
        let forward = try capture(inputs: inputShapes.specs, forward: capturableForward)
        return CapturedUNet2DConditionModel(inputShapes: inputShapes, forward: forward)
    }

    /// Captures the forward while it computes this call (see `Module.captureRecording`):
    /// the captured UNet and this call's prediction.
    public func captureRecording(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor, addedConditions: AddedConditions? = nil)
        throws -> (captured: CapturedUNet2DConditionModel, output: Tensor) {
        let inputs = [sample, timestep, encoderHiddenStates] + (addedConditions.map { [$0.textEmbeds, $0.timeIds] } ?? [])
        let (forward, output) = try captureRecording(inputs, forward: capturableForward)
        let shapes = InputShapes(sample: sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates, addedConditions: addedConditions)
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
    public func callAsFunction(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor,
                               addedConditions: UNet2DConditionModel.AddedConditions? = nil) throws -> Tensor {
        try forward([sample, timestep, encoderHiddenStates] + (addedConditions.map { [$0.textEmbeds, $0.timeIds] } ?? []))
    }
}
