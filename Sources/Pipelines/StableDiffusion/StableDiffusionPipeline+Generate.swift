import Foundation
import Models
import Schedulers
import Tensor

extension StableDiffusionPipeline {
    /// Text to image, as Diffusers' `StableDiffusionPipeline.__call__`: encode the prompts,
    /// draw (or take) the initial latents, denoise with classifier-free guidance, decode.
    public func generate(_ options: GenerationOptions, progress: ProgressHandler? = nil) throws -> GenerationResult {
        try restartingOnAttentionPlanDown { try generateOnce(options, progress: progress) }
    }

    /// One run of `generate` (`restartingOnAttentionPlanDown` may make two).
    private func generateOnce(_ options: GenerationOptions, progress: ProgressHandler?) throws -> GenerationResult {
        defer { modelOffload?.offloadAll() }   // Diffusers' maybe_free_model_hooks
        _ = try resolvedSize(options, supported: [.guidanceRescale], pipeline: Self.layout.className)
        try castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let (positive, negative) = try promptPhase(options, timings: &timings)
        let batch = positive.shape[0]

        var generator = TorchGenerator(seed: options.seed)
        try scheduler.setTimesteps(options.steps)
        var latents = try initialLatents(options, batch: batch, generator: &generator)
        scheduler.generator = generator
        latents = try denoise(latents, timesteps: scheduler.timesteps, positive: positive, negative: negative,
                              guidanceScale: options.guidanceScale, guidanceRescale: options.guidanceRescale, timings: &timings,
                              progress: progress)
        let images = try decodePhase(latents, timings: &timings)
        return GenerationResult(images: images, latents: latents, timings: timings)
    }

    /// The prompt phase: prompt states (or the given embeddings), with negatives when guidance
    /// is on, in the text encoder's phase.
    func promptPhase(_ options: GenerationOptions, timings: inout GenerationResult.Timings) throws -> (Tensor, Tensor?) {
        try conditioningPhase(options, timings: &timings, encode: { try inPhase(of: textEncoder) { try conditioningStates(options) } },
                              tensors: { [("prompt embeddings", $0.0)] + ($0.1.map { [("negative prompt embeddings", $0)] } ?? []) })
    }

    private func conditioningStates(_ options: GenerationOptions) throws -> (Tensor, Tensor?) {
        let guidance = options.guidanceScale > 1
        if let embeddings = options.promptEmbeddings {
            guard embeddings.rank == 3, embeddings.shape[2] == unet.config.crossAttentionDim else {
                throw PipelineError.invalidOption("prompt embeddings must be [N, S, \(unet.config.crossAttentionDim)], got \(embeddings.shape)")
            }
            let positive = try repeatRows(embeddings.to(dtype), options.imagesPerPrompt)
            guard guidance else { return (positive, nil) }
            if let negative = options.negativePromptEmbeddings {
                guard negative.shape == embeddings.shape else {
                    throw PipelineError.invalidOption("negative prompt embeddings \(negative.shape) do not match the prompt embeddings \(embeddings.shape)")
                }
                return (positive, try repeatRows(negative.to(dtype), options.imagesPerPrompt))
            }
            let empty = try textStates(Array(repeating: "", count: embeddings.shape[0]))
            return (positive, try repeatRows(empty, options.imagesPerPrompt))
        }
        return try encodePrompt(options.prompts, negativePrompts: options.negativePrompts,
                                imagesPerPrompt: options.imagesPerPrompt, classifierFreeGuidance: guidance)
    }

    /// The loop shared by text-to-image and image-to-image: the UNet on the latents with the
    /// text states (the negative half first with guidance).
    func denoise(_ initial: Tensor, timesteps: [Timestep], positive: Tensor, negative: Tensor?, guidanceScale: Float,
                 guidanceRescale: Float, timings: inout GenerationResult.Timings, progress: ProgressHandler?) throws -> Tensor {
        let context = try negative.map { try Tensor.concat([$0, positive], axis: 0) } ?? positive   // [2B or B, S, D]
        return try guidedDenoise(initial, timesteps: timesteps, context: context, added: nil, guided: negative != nil,
                                 scale: guidanceScale, rescale: guidanceRescale, timings: &timings, progress: progress)
    }
}
