import Models
import Schedulers
import Tensor

/// Image to image, as Diffusers' `FluxImg2ImgPipeline`, on the components of a loaded
/// `FluxPipeline`: the image is encoded (less the shift factor, scaled), noised to the first
/// timestep left by `strength` with the flow-matching `scale_noise`, packed, and denoised.
public struct FluxImg2ImgPipeline: @unchecked Sendable {
    public let base: FluxPipeline

    public init(_ base: FluxPipeline) { self.base = base }

    /// Diffusers' default `strength` for this pipeline.
    public static let defaultStrength: Float = 0.6

    /// - Parameters:
    ///   - image: [1 or N, 3, H, W] in [-1, 1], its sides multiples of 2·vaeScaleFactor (Diffusers'
    ///     image processor resizes to those; `diffuse` does too), or latents [1 or N, C, h, w] with
    ///     the VAE's channels and even sides, used as they are.
    ///   - noise: the unpacked noise to add instead of drawing it; `latentSampleNoise` the VAE
    ///     sample's (for exact comparisons).
    public func generate(_ options: GenerationOptions, image: Tensor, strength: Float = defaultStrength, noise: Tensor? = nil,
                         latentSampleNoise: Tensor? = nil, progress: ProgressHandler? = nil) throws -> GenerationResult {
        try base.restartingOnAttentionPlanDown {
            try generateOnce(options, image: image, strength: strength, noise: noise, latentSampleNoise: latentSampleNoise, progress: progress)
        }
    }

    /// One run of `generate` (`restartingOnAttentionPlanDown` may make two).
    private func generateOnce(_ options: GenerationOptions, image: Tensor, strength: Float, noise: Tensor?,
                              latentSampleNoise: Tensor?, progress: ProgressHandler?) throws -> GenerationResult {
        defer { base.modelOffload?.offloadAll() }
        let channels = base.latentChannels
        let (sized, givenLatents) = try base.imageToImageInput(options, image: image, strength: strength, latentChannels: channels,
                                                               vaeScaleFactor: base.vaeScaleFactor)
        let call = try base.resolvedCall(sized, pipeline: "FluxImg2ImgPipeline")
        let unit = givenLatents ? 2 : 2 * base.vaeScaleFactor
        guard image.shape[2] % unit == 0, image.shape[3] % unit == 0 else {
            throw PipelineError.invalidOption("the init image is \(image.shape[3])×\(image.shape[2]); FLUX image to image takes sides that are "
                                              + "multiples of \(unit)\(givenLatents ? " latents" : " pixels") (resize it first)")
        }
        try base.requireFinite(image, "the init image")
        try base.castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let prompt = try base.promptPhase(options, call: call, timings: &timings)
        let batch = prompt.embeds.shape[0]
        guard image.shape[0] == 1 || image.shape[0] == batch else {
            throw PipelineError.invalidOption("\(image.shape[0]) init images for a batch of \(batch)")
        }

        try base.setSchedule(steps: options.steps, imageSequenceLength: call.imageSequenceLength)
        // Diffusers' get_timesteps: init = min(N·strength, N) as a float, t_start = int(N − init).
        let steps = options.steps
        let start = Int(max(Float(steps) - min(Float(steps) * strength, Float(steps)), 0)) * base.scheduler.order
        base.scheduler.setBeginIndex(start)
        let timesteps = Array(base.scheduler.timesteps.dropFirst(start))
        guard let first = timesteps.first else {
            throw PipelineError.invalidOption("strength \(strength) with \(steps) steps leaves no denoising step")
        }
        guard let flow = base.scheduler as? FlowMatchEulerDiscreteScheduler else {
            throw PipelineError.invalidOption("FLUX needs the flow-match scheduler, not \(type(of: base.scheduler))")
        }

        var generator = TorchGenerator(seed: options.seed)
        let imageLatents = givenLatents
            ? try base.repeatedToBatch(image.to(.f32).to(.cpu), batch)
            : try base.imageLatents(image, encodeDType: base.dtype, latentDType: base.dtype, batch: batch,
                                    sampleNoise: latentSampleNoise, generator: &generator, timings: &timings)
        let shape = [batch, channels, call.latentHeight, call.latentWidth]
        guard imageLatents.shape == shape else {
            throw PipelineError.invalidOption("the init image's latents are \(imageLatents.shape); this run needs \(shape)")
        }
        let added = try noise ?? generator.randn(shape)
        guard added.shape == shape else { throw PipelineError.invalidOption("noise \(added.shape) does not match the latents \(shape)") }
        let noised = try flow.scaleNoise(imageLatents, timesteps: Array(repeating: first, count: batch), noise: added.to(base.dtype).to(.f32))
        base.scheduler.generator = generator
        let latents = try base.denoise(FluxLatents.pack(noised.to(base.dtype).to(.f32)), timesteps: timesteps, prompt: prompt, call: call,
                                       options: options, timings: &timings, progress: progress)
        return try base.finish(latents, call: call, timings: timings)
    }
}

extension FluxImg2ImgPipeline: ImageToImagePipeline {
    public var defaultStrength: Float { Self.defaultStrength }
    /// Diffusers' `FluxImg2ImgPipeline.__call__` defaults `guidance_scale` to 7.0 (FluxPipeline: 3.5).
    public var defaultGuidanceScale: Float? { 7 }

    public func generate(_ options: GenerationOptions, image: Tensor, strength: Float, progress: ProgressHandler?) throws -> GenerationResult {
        try generate(options, image: image, strength: strength, noise: nil, latentSampleNoise: nil, progress: progress)
    }
}

extension FluxPipeline: TextToImagePipeline {
    public func imageToImage() -> any ImageToImagePipeline { FluxImg2ImgPipeline(self) }
    /// Diffusers' FLUX image processor works in multiples of 2·vaeScaleFactor (one packed token).
    public var imageSizeMultiple: Int { 2 * vaeScaleFactor }
    public var defaultSteps: Int { Self.defaultSteps }
    public var defaultGuidanceScale: Float { Self.defaultGuidanceScale }

    public func enableDenoiserCapture() throws {
        throw PipelineError.invalidOption("graph capture is implemented for the UNet; the FLUX transformer runs eagerly")
    }

    public var lastDenoiserCapturePlan: CapturePlan? { nil }
}
