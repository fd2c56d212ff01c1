import Models
import Schedulers
import Tensor

/// Image to image, as Diffusers' `StableDiffusionXLImg2ImgPipeline`, on the components of a
/// loaded `StableDiffusionXLPipeline` (base or refiner): the image is encoded and noised to
/// `strength` of the schedule, or — with `denoising_start`, the refiner of an ensemble — taken
/// as latents and continued from that point without noise.
public struct StableDiffusionXLImg2ImgPipeline: @unchecked Sendable {
    public let base: StableDiffusionXLPipeline

    public init(_ base: StableDiffusionXLPipeline) { self.base = base }

    /// Diffusers' default `strength` for this pipeline.
    public static let defaultStrength: Float = 0.3

    /// - Parameters:
    ///   - image: [1 or N, 3, H, W] in [-1, 1], or latents [1 or N, 4, h, w] (used as they are,
    ///     as Diffusers takes a 4-channel image).
    ///   - noise: the latent noise to add instead of drawing it (for exact comparisons).
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
        let pipeline = "StableDiffusionXLImg2ImgPipeline"
        let (input, givenLatents) = try base.imageToImageInput(options, image: image, strength: strength,
                                                               latentChannels: base.unet.config.inChannels, vaeScaleFactor: base.vaeScaleFactor)
        var sized = input
        // Without requires_aesthetics_score Diffusers takes aesthetic_score and ignores it.
        let supported: Set<FamilyOption> = [.prompt2, .negativePrompt2, .pooledPromptEmbeddings, .clipSkip, .guidanceRescale,
                                            .denoisingEnd, .denoisingStart, .sizeConditioning, .aestheticScore]
        var notes: [String] = []
        if !base.requiresAestheticsScore && FamilyOption.aestheticScore.isSet(in: options) {
            notes.append("aesthetic_score and negative_aesthetic_score were ignored: this pipeline's model_index.json has no "
                         + "requires_aesthetics_score, so its time ids hold the target size (as Diffusers ignores them)")
            sized.microConditioning.aestheticScore = nil
            sized.microConditioning.negativeAestheticScore = nil
        }
        let (width, height) = try base.resolvedCall(sized, supported: supported, pipeline: pipeline)
        if let start = options.denoisingStart, !(start.isFinite && start > 0 && start < 1) {
            throw PipelineError.invalidOption("denoising_start must be between 0 and 1 (exclusive), not \(start)")
        }
        if let start = options.denoisingStart, let end = options.denoisingEnd, start >= end {
            throw PipelineError.invalidOption("denoising_start (\(start)) must be below denoising_end (\(end))")
        }
        let (ids, negativeIDs) = timeIDs(options.microConditioning, size: ImageSize(width: width, height: height))
        try base.checkTimeIDs(count: ids.count)
        try base.requireFinite(image, "the init image")
        try base.castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let prompt = try base.promptPhase(options, timings: &timings)
        let batch = prompt.embeds.shape[0]
        guard image.shape[0] == 1 || image.shape[0] == batch else {
            throw PipelineError.invalidOption("\(image.shape[0]) init images for a batch of \(batch)")
        }

        try base.scheduler.setTimesteps(options.steps)
        let timesteps = try base.endingAt(options.denoisingEnd, try startingTimesteps(options, strength: strength))
        guard let first = timesteps.first else {
            throw PipelineError.invalidOption("strength \(strength) with \(options.steps) steps leaves no denoising step")
        }

        var generator = TorchGenerator(seed: options.seed)
        var latents: Tensor
        if givenLatents {
            latents = try base.repeatedToBatch(image.to(.f32).to(.cpu), batch)
        } else {
            // Encoded in f32 where the VAE says force_upcast, as Diffusers encodes; the latents in
            // the pipeline's dtype.
            latents = try base.imageLatents(image, encodeDType: base.vae.config.forceUpcast ? .f32 : base.dtype, latentDType: base.dtype,
                                            batch: batch, sampleNoise: latentSampleNoise, generator: &generator, timings: &timings)
        }
        // With denoising_start no noise is added (Diffusers' add_noise=False).
        if options.denoisingStart == nil { latents = try base.noised(latents, noise: noise, at: first, generator: &generator) }
        base.scheduler.generator = generator
        latents = try base.denoise(latents, timesteps: timesteps, prompt: prompt, timeIDs: (ids, negativeIDs), options: options,
                                   timings: &timings, progress: progress)
        let images = try base.decodePhase(latents, timings: &timings)
        var result = GenerationResult(images: images, latents: latents, timings: timings)
        result.notes = notes
        return result
    }

    /// Diffusers' `get_timesteps`: the last `strength` of the schedule, or with `denoising_start`
    /// those below round(N − f·N) (one more for a second-order scheduler left an even count);
    /// the scheduler's begin index set to match.
    private func startingTimesteps(_ options: GenerationOptions, strength: Float) throws -> [Timestep] {
        let scheduler = base.scheduler
        let all = scheduler.timesteps
        guard let start = options.denoisingStart else { return base.strengthTimesteps(steps: options.steps, strength: strength) }
        let cutoff = base.timestepCutoff(start)
        var count = all.filter { $0.value < cutoff }.count
        if scheduler.order == 2 && count % 2 == 0 { count += 1 }
        let startIndex = max(all.count - count, 0)
        base.scheduler.setBeginIndex(startIndex)
        return Array(all.dropFirst(startIndex))
    }

    /// Diffusers' `_get_add_time_ids` for image to image: with `requires_aesthetics_score`
    /// (original, crop, aesthetic score), else (original, crop, target); the negatives default
    /// to the positive sizes, and without the score take the positive crop.
    private func timeIDs(_ micro: MicroConditioning, size: ImageSize) -> ([Float], [Float]) {
        let original = micro.originalSize ?? size, target = micro.targetSize ?? size
        let negativeOriginal = micro.negativeOriginalSize ?? original, negativeTarget = micro.negativeTargetSize ?? target
        let crop = micro.cropsCoordsTopLeft, negativeCrop = micro.negativeCropsCoordsTopLeft
        func sizes(_ s: ImageSize) -> [Float] { [Float(s.height), Float(s.width)] }
        func corner(_ c: (top: Int, left: Int)) -> [Float] { [Float(c.top), Float(c.left)] }
        if base.requiresAestheticsScore {
            return (sizes(original) + corner(crop) + [micro.aestheticScore ?? 6],
                    sizes(negativeOriginal) + corner(negativeCrop) + [micro.negativeAestheticScore ?? 2.5])
        }
        return (sizes(original) + corner(crop) + sizes(target), sizes(negativeOriginal) + corner(crop) + sizes(negativeTarget))
    }
}

extension StableDiffusionXLImg2ImgPipeline: ImageToImagePipeline {
    public var defaultStrength: Float { Self.defaultStrength }

    public func generate(_ options: GenerationOptions, image: Tensor, strength: Float, progress: ProgressHandler?) throws -> GenerationResult {
        try generate(options, image: image, strength: strength, noise: nil, latentSampleNoise: nil, progress: progress)
    }
}

extension StableDiffusionXLPipeline: TextToImagePipeline {
    public func imageToImage() -> any ImageToImagePipeline { StableDiffusionXLImg2ImgPipeline(self) }
}
