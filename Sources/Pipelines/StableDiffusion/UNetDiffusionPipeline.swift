import Models
import NN
import Schedulers
import Tensor

/// What the Stable Diffusion family's pipelines (1.x/2.x and XL) share on top of the core: a
/// `UNet2DConditionModel` denoiser and an `AutoencoderKL`, the image size rules they imply,
/// the initial latents, and the UNet's graph capture.
public class UNetDiffusionPipeline: DiffusionPipeline, @unchecked Sendable {
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    /// Set by `enableUNetCapture`.
    var unetCapture: UNetCaptureState?

    public override init(_ components: LoadedComponents) throws {
        unet = try components.model("unet")
        vae = try components.model("vae")
        try super.init(components)
    }

    /// Pixels per latent along each side (8 for Stable Diffusion).
    public var vaeScaleFactor: Int { vae.config.downscaleFactor }

    /// Channels of the latents the UNet works on.
    public var latentChannels: Int { unet.config.inChannels }

    /// Image sizes are multiples of this many pixels (see `DiffusionPipeline.sizeMultiple`).
    public var sizeMultiple: Int { Self.sizeMultiple(vaeScaleFactor: vaeScaleFactor) }

    /// The size when the options give none: the UNet's sample size in pixels.
    public var defaultImageSize: Int { unet.config.sampleSize * vaeScaleFactor }

    /// The validated size (width, height) of a call (`validatedCall`), after refusing the family
    /// arguments `pipeline` does not take.
    func resolvedSize(_ options: GenerationOptions, supported: Set<FamilyOption>, pipeline: String) throws -> (Int, Int) {
        try options.refuseUnsupported(supported, pipeline: pipeline)
        return try validatedCall(options, defaultSize: defaultImageSize, multiple: sizeMultiple,
                                 scaling: "its VAE scales by \(vaeScaleFactor) and Diffusers asks for multiples of 8")
    }

    /// The initial latents of a text-to-image call, [batch, C, h, w] scaled by the scheduler's
    /// `init_noise_sigma`: the given ones (`options.latents`) or drawn from `generator`, as
    /// Diffusers' `prepare_latents`.
    func initialLatents(_ options: GenerationOptions, batch: Int, generator: inout TorchGenerator) throws -> Tensor {
        let latents = try initialNoise(options, shape: [batch] + initialNoiseShape(options), generator: &generator)
        return try latents.scaled(by: scheduler.initNoiseSigma)
    }

    /// One image's initial noise [C, h, w] at the options' size (the UNet's sample size by default).
    public func initialNoiseShape(_ options: GenerationOptions) -> [Int] {
        [unet.config.inChannels, (options.height ?? defaultImageSize) / vaeScaleFactor, (options.width ?? defaultImageSize) / vaeScaleFactor]
    }

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

    public func enableDenoiserCapture() { enableUNetCapture() }
    public var lastDenoiserCapturePlan: CapturePlan? { lastUNetCapturePlan }

    override public func denoiserCallEnded() {
        super.denoiserCallEnded()
        unetCapture?.endCall()
    }

    /// The UNet's prediction, eager or through the capture.
    func predictNoise(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor,
                      addedConditions: UNet2DConditionModel.AddedConditions? = nil) throws -> Tensor {
        guard let state = unetCapture else {
            return try unet(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates, addedConditions: addedConditions)
        }
        let shapes = UNet2DConditionModel.InputShapes(sample: sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates,
                                                      addedConditions: addedConditions)
        // Hooks added or removed change what a forward allocates: the graph must be redone.
        let hooks = unet.allHooks().map { "\($0.path)|\($0.name)" } + ["device \(unet.executionDevice)"]
        if let captured = state.captured, captured.inputShapes == shapes, state.warmedUp?.hooks == hooks {
            return try captured(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates, addedConditions: addedConditions)
        }
        state.captured = nil
        if let warm = state.warmedUp, warm.shapes == shapes, warm.hooks == hooks {
            let (captured, output) = try unet.captureRecording(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates,
                                                               addedConditions: addedConditions)
            state.captured = captured
            state.lastPlan = captured.plan
            return output
        }
        state.warmedUp = (shapes, hooks)
        return try unet(sample, timestep: timestep, encoderHiddenStates: encoderHiddenStates, addedConditions: addedConditions)
    }
}

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
