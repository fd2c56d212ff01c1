import Models
import Schedulers
import Tensor

/// Image to image, as Diffusers' `StableDiffusionImg2ImgPipeline`, on the components of a
/// loaded `StableDiffusionPipeline`: the image is encoded, noised to the timestep `strength`
/// of the way into the schedule, and denoised from there.
public struct StableDiffusionImg2ImgPipeline: @unchecked Sendable {
    public let base: StableDiffusionPipeline

    public init(_ base: StableDiffusionPipeline) { self.base = base }

    /// - Parameters:
    ///   - image: [1 or N, 3, H, W] in [-1, 1], H and W multiples of 8.
    ///   - strength: in [0, 1]; 1 ignores the image's content, 0 returns it (re-encoded).
    ///   - noise: the latent noise to add instead of drawing it (for exact comparisons).
    public func generate(_ options: GenerationOptions, image: Tensor, strength: Float, noise: Tensor? = nil,
                         latentSampleNoise: Tensor? = nil, progress: ProgressHandler? = nil) throws -> GenerationResult {
        try base.restartingOnAttentionPlanDown {
            try generateOnce(options, image: image, strength: strength, noise: noise, latentSampleNoise: latentSampleNoise, progress: progress)
        }
    }

    /// One run of `generate` (`restartingOnAttentionPlanDown` may make two).
    private func generateOnce(_ options: GenerationOptions, image: Tensor, strength: Float, noise: Tensor?,
                              latentSampleNoise: Tensor?, progress: ProgressHandler?) throws -> GenerationResult {
        defer { base.modelOffload?.offloadAll() }
        let (sized, _) = try base.imageToImageInput(options, image: image, strength: strength, latentChannels: nil,
                                                    vaeScaleFactor: base.vaeScaleFactor)
        _ = try base.resolvedSize(sized, supported: [.guidanceRescale], pipeline: "StableDiffusionImg2ImgPipeline")
        try base.requireFinite(image, "the init image")
        try base.castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let (positive, negative) = try base.promptPhase(options, timings: &timings)
        let batch = positive.shape[0]
        guard image.shape[0] == 1 || image.shape[0] == batch else {
            throw PipelineError.invalidOption("\(image.shape[0]) init images for a batch of \(batch)")
        }

        // Timesteps: skip the first (1 - strength) of the schedule (`get_timesteps`).
        try base.scheduler.setTimesteps(options.steps)
        let timesteps = base.strengthTimesteps(steps: options.steps, strength: strength)
        guard let first = timesteps.first else {
            throw PipelineError.invalidOption("strength \(strength) with \(options.steps) steps leaves no denoising step")
        }

        // Latents of the image, sampled from the encoder's distribution, scaled, noised.
        var generator = TorchGenerator(seed: options.seed)
        var latents = try base.imageLatents(image, encodeDType: base.dtype, latentDType: .f32, batch: batch, sampleNoise: latentSampleNoise,
                                            generator: &generator, timings: &timings)
        latents = try base.noised(latents, noise: noise, at: first, generator: &generator)
        base.scheduler.generator = generator

        latents = try base.denoise(latents, timesteps: timesteps, positive: positive, negative: negative,
                                   guidanceScale: options.guidanceScale, guidanceRescale: options.guidanceRescale,
                                   timings: &timings, progress: progress)
        let images = try base.decodePhase(latents, timings: &timings)
        return GenerationResult(images: images, latents: latents, timings: timings)
    }
}

extension StableDiffusionImg2ImgPipeline: ImageToImagePipeline {
    /// Diffusers' default for `StableDiffusionImg2ImgPipeline`.
    public var defaultStrength: Float { 0.8 }

    public func generate(_ options: GenerationOptions, image: Tensor, strength: Float, progress: ProgressHandler?) throws -> GenerationResult {
        try generate(options, image: image, strength: strength, noise: nil, latentSampleNoise: nil, progress: progress)
    }
}
