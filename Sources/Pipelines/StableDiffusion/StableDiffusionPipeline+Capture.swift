import Models
import NN
import Tensor

/// The UNet capture of a pipeline call: the first step runs eagerly (it fills the caches a
/// first call fills), the second is recorded, the rest replay. The arena is released when
/// the call's denoising loop ends, so that nothing stays on the device between calls (model
/// offload and the VAE decode get that memory back).
final class UNetCaptureState: @unchecked Sendable {
    var captured: CapturedUNet2DConditionModel?
    /// The inputs and hooks of the eager step that warmed the UNet up.
    var warmedUp: (shapes: UNet2DConditionModel.InputShapes, hooks: [String])?
    var lastPlan: CapturePlan?

    func endCall() {
        captured = nil
        warmedUp = nil
    }
}

extension StableDiffusionPipeline {
    /// Runs the UNet as a captured graph (`UNet2DConditionModel.capture`) during the
    /// denoising loop: step 1 eager, step 2 recorded, steps 3 on replayed with every activation
    /// in one planned arena. The images are the same bit for bit; a change of shapes or of
    /// hooks between steps starts over (eager, then recorded).
    public func enableUNetCapture() {
        if unetCapture == nil { unetCapture = UNetCaptureState() }
    }

    public func disableUNetCapture() { unetCapture = nil }

    /// The plan of the UNet graph the last call captured (nil before one did).
    public var lastUNetCapturePlan: CapturePlan? { unetCapture?.lastPlan }

    /// The UNet's prediction, eager or through the capture.
    func predictNoise(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        guard let state = unetCapture else { return try unet(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates) }
        let shapes = UNet2DConditionModel.InputShapes(sample: sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
        // Hooks added or removed change what a forward allocates: the graph must be redone.
        let hooks = unet.allHooks().map { "\($0.path)|\($0.name)" } + ["device \(unet.executionDevice)"]
        if let captured = state.captured, captured.inputShapes == shapes, state.warmedUp?.hooks == hooks {
            return try captured(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
        }
        state.captured = nil
        if let warm = state.warmedUp, warm.shapes == shapes, warm.hooks == hooks {
            let (captured, output) = try unet.captureRecording(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
            state.captured = captured
            state.lastPlan = captured.plan
            return output
        }
        state.warmedUp = (shapes, hooks)
        return try unet(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates)
    }
}

extension StableDiffusionPipeline: TextToImagePipeline {
    public func imageToImage() -> any ImageToImagePipeline { StableDiffusionImg2ImgPipeline(self) }
    public func enableDenoiserCapture() { enableUNetCapture() }
    public var latentChannels: Int { unet.config.inChannels }
    public var lastDenoiserCapturePlan: CapturePlan? { lastUNetCapturePlan }
}
