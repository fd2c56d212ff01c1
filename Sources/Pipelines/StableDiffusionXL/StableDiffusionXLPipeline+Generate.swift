import Foundation
import Models
import NN
import Schedulers
import Tensor

extension StableDiffusionXLPipeline {
    /// Text to image, as Diffusers' `StableDiffusionXLPipeline.__call__`: encode the prompts with
    /// both encoders, micro-conditioning time ids, draw (or take) the latents, denoise with
    /// guidance (and `guidance_rescale`) up to `denoising_end`, decode.
    public func generate(_ options: GenerationOptions, progress: ProgressHandler? = nil) throws -> GenerationResult {
        try restartingOnAttentionPlanDown { try generateOnce(options, progress: progress) }
    }

    /// One run of `generate` (`restartingOnAttentionPlanDown` may make two).
    private func generateOnce(_ options: GenerationOptions, progress: ProgressHandler?) throws -> GenerationResult {
        defer { modelOffload?.offloadAll() }
        let (width, height) = try resolvedCall(options, supported: [.prompt2, .negativePrompt2, .pooledPromptEmbeddings, .clipSkip,
                                                                    .guidanceRescale, .denoisingEnd, .sizeConditioning],
                                               pipeline: Self.layout.className)
        let size = ImageSize(width: width, height: height)
        let micro = options.microConditioning
        let ids = timeIDs(micro.originalSize ?? size, micro.cropsCoordsTopLeft, micro.targetSize ?? size)
        let negativeIDs = micro.negativeOriginalSize.flatMap { original in
            micro.negativeTargetSize.map { timeIDs(original, micro.negativeCropsCoordsTopLeft, $0) }
        } ?? ids
        try checkTimeIDs(count: ids.count)
        try castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let prompt = try promptPhase(options, timings: &timings)
        let batch = prompt.embeds.shape[0]

        var generator = TorchGenerator(seed: options.seed)
        try scheduler.setTimesteps(options.steps)
        let timesteps = try endingAt(options.denoisingEnd, scheduler.timesteps)
        var latents = try initialLatents(options, batch: batch, generator: &generator)
        scheduler.generator = generator
        latents = try denoise(latents, timesteps: timesteps, prompt: prompt, timeIDs: (ids, negativeIDs), options: options,
                              timings: &timings, progress: progress)
        let images = try decodePhase(latents, timings: &timings)
        return GenerationResult(images: images, latents: latents, timings: timings)
    }

    /// Diffusers' `_get_add_time_ids` for text to image: (original h, w, crop top, left, target h, w).
    func timeIDs(_ original: ImageSize, _ crop: (top: Int, left: Int), _ target: ImageSize) -> [Float] {
        [original.height, original.width, crop.top, crop.left, target.height, target.width].map(Float.init)
    }

    /// The addition embedding's width must be the pooled width plus `count` time ids' embeddings
    /// (Diffusers' check in `_get_add_time_ids`), before anything runs.
    func checkTimeIDs(count: Int) throws {
        guard let textTime = unet.config.textTimeEmbedding else { return }
        let pooled = textEncoder2.config.projectionDim
        let passed = textTime.additionTimeEmbedDim * count + pooled
        guard passed == textTime.projectionClassEmbeddingsInputDim else {
            throw PipelineError.invalidOption(
                "the UNet's projection_class_embeddings_input_dim is \(textTime.projectionClassEmbeddingsInputDim), but \(count) time ids "
                    + "× addition_time_embed_dim \(textTime.additionTimeEmbedDim) + text_encoder_2's projection_dim \(pooled) = \(passed)"
                    + (requiresAestheticsScore != (count == 5) ? "" : "; check requires_aesthetics_score in model_index.json"))
        }
    }

    /// The timesteps before `denoising_end` (Diffusers: those ≥ round(N − f·N)).
    func endingAt(_ end: Double?, _ timesteps: [Timestep]) throws -> [Timestep] {
        guard let end else { return timesteps }
        guard end.isFinite, end > 0, end < 1 else {
            throw PipelineError.invalidOption("denoising_end must be between 0 and 1 (exclusive), not \(end)")
        }
        let cutoff = timestepCutoff(end)
        return Array(timesteps.prefix { $0.value >= cutoff })
    }

    /// The prompt phase: both encoders (or the given embeddings), in the phases of the encoders.
    func promptPhase(_ options: GenerationOptions, timings: inout GenerationResult.Timings) throws -> PromptEmbeddings {
        try conditioningPhase(options, timings: &timings, encode: { try encodedPrompt(options) }, tensors: { prompt in
            [("prompt embeddings", prompt.embeds), ("pooled prompt embeddings", prompt.pooled)]
                + (prompt.negativeEmbeds.map { [("negative prompt embeddings", $0)] } ?? [])
                + (prompt.negativePooled.map { [("negative pooled prompt embeddings", $0)] } ?? [])
        })
    }

    private func encodedPrompt(_ options: GenerationOptions) throws -> PromptEmbeddings {
        let guidance = options.guidanceScale > 1
        let encoders: [Module] = (textEncoder.map { [$0] } ?? []) + [textEncoder2]
        // Each encoder's phase in turn (its pages released, its pending casts undone, after).
        func inEncoderPhases<T>(_ body: () throws -> T) throws -> T {
            func nest(_ index: Int) throws -> T {
                guard index < encoders.count else { return try body() }
                return try inPhase(of: encoders[index]) { try nest(index + 1) }
            }
            return try nest(0)
        }
        guard let embeddings = options.promptEmbeddings else {
            return try inEncoderPhases {
                try encodePrompt(options.prompts, prompts2: options.prompts2, negativePrompts: options.negativePrompts,
                                 negativePrompts2: options.negativePrompts2, imagesPerPrompt: options.imagesPerPrompt,
                                 classifierFreeGuidance: guidance, clipSkip: options.clipSkip)
            }
        }
        guard let pooled = options.pooledPromptEmbeddings else {
            throw PipelineError.invalidOption("prompt embeddings need pooled prompt embeddings too (pooled_prompt_embeds)")
        }
        guard embeddings.rank == 3, embeddings.shape[2] == unet.config.crossAttentionDim, pooled.rank == 2,
              pooled.shape[0] == embeddings.shape[0], pooled.shape[1] == textEncoder2.config.projectionDim else {
            throw PipelineError.invalidOption("prompt embeddings must be [N, S, \(unet.config.crossAttentionDim)] with pooled [N, "
                                              + "\(textEncoder2.config.projectionDim)], got \(embeddings.shape) and \(pooled.shape)")
        }
        var result = PromptEmbeddings(embeds: try repeatRows(embeddings.to(dtype), options.imagesPerPrompt),
                                      pooled: try repeatRows(pooled.to(dtype), options.imagesPerPrompt))
        guard guidance else { return result }
        if let negative = options.negativePromptEmbeddings {
            guard let negativePooled = options.negativePooledPromptEmbeddings else {
                throw PipelineError.invalidOption("negative prompt embeddings need negative pooled prompt embeddings too")
            }
            guard negative.shape == embeddings.shape, negativePooled.shape == pooled.shape else {
                throw PipelineError.invalidOption("negative prompt embeddings \(negative.shape) / \(negativePooled.shape) do not match "
                                                  + "the prompt embeddings \(embeddings.shape) / \(pooled.shape)")
            }
            result.negativeEmbeds = try repeatRows(negative.to(dtype), options.imagesPerPrompt)
            result.negativePooled = try repeatRows(negativePooled.to(dtype), options.imagesPerPrompt)
            return result
        }
        let count = embeddings.shape[0]
        let encoded = try inEncoderPhases {
            try encodePrompt(Array(repeating: "", count: count), negativePrompts: options.negativePrompts,
                             negativePrompts2: options.negativePrompts2, imagesPerPrompt: options.imagesPerPrompt, classifierFreeGuidance: true)
        }
        result.negativeEmbeds = encoded.negativeEmbeds
        result.negativePooled = encoded.negativePooled
        return result
    }

    /// The loop shared by text-to-image and image-to-image: the UNet on the (doubled) latents
    /// with the text states, pooled embeddings and time ids, guidance and its rescale.
    func denoise(_ initial: Tensor, timesteps: [Timestep], prompt: PromptEmbeddings, timeIDs: (positive: [Float], negative: [Float]),
                 options: GenerationOptions, timings: inout GenerationResult.Timings, progress: ProgressHandler?) throws -> Tensor {
        let batch = prompt.embeds.shape[0]
        func ids(_ values: [Float]) throws -> Tensor {
            try Tensor(Array((0..<batch).map { _ in values }.joined()), shape: [batch, values.count]).to(dtype)
        }
        var context = prompt.embeds, pooled = prompt.pooled, times = try ids(timeIDs.positive)            // [B, S, D], [B, P], [B, N]
        if let negative = prompt.negativeEmbeds, let negativePooled = prompt.negativePooled {
            context = try Tensor.concat([negative, context], axis: 0)
            pooled = try Tensor.concat([negativePooled, pooled], axis: 0)
            times = try Tensor.concat([try ids(timeIDs.negative), times], axis: 0)
        }
        return try guidedDenoise(initial, timesteps: timesteps, context: context,
                                 added: UNet2DConditionModel.AddedConditions(textEmbeds: pooled, timeIds: times),
                                 guided: prompt.negativeEmbeds != nil, scale: options.guidanceScale, rescale: options.guidanceRescale,
                                 timings: &timings, progress: progress)
    }
}
