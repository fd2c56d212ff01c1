import Foundation
import Models
import Schedulers
import Tensor

extension StableDiffusionPipeline {
    /// Text to image, as Diffusers' `StableDiffusionPipeline.__call__`: encode the prompts,
    /// draw (or take) the initial latents, denoise with classifier-free guidance, decode.
    public func generate(_ options: GenerationOptions, progress: ProgressHandler? = nil) throws -> GenerationResult {
        defer { modelOffload?.offloadAll() }   // Diffusers' maybe_free_model_hooks
        let (width, height) = try resolvedSize(options)
        try castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let (positive, negative) = try conditioningPhase(options, timings: &timings)
        let batch = positive.shape[0]

        var generator = TorchGenerator(seed: options.seed)
        try scheduler.setTimesteps(options.steps)
        let shape = [batch, unet.config.inChannels, height / vaeScaleFactor, width / vaeScaleFactor]
        var latents: Tensor
        if let given = options.latents {
            guard given.shape == shape else {
                throw PipelineError.invalidOption("initial latents have shape \(given.shape); this run needs \(shape)")
            }
            latents = try given.to(.f32)
        } else {
            latents = try generator.randn(shape)
        }
        latents = try latents.scaled(by: scheduler.initNoiseSigma)
        scheduler.generator = generator
        latents = try denoise(latents, timesteps: scheduler.timesteps, positive: positive, negative: negative,
                              guidanceScale: options.guidanceScale, timings: &timings, progress: progress)
        let images = try decodePhase(latents, timings: &timings)
        return GenerationResult(images: images, latents: latents, timings: timings)
    }

    /// Prompt states (or the given embeddings), with negatives when guidance is on.
    func conditioning(_ options: GenerationOptions) throws -> (Tensor, Tensor?) {
        try inPhase(of: textEncoder) { try conditioningStates(options) }
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

    /// The loop shared by text-to-image and image-to-image.
    func denoise(_ initial: Tensor, timesteps: [Timestep], positive: Tensor, negative: Tensor?, guidanceScale: Float,
                 timings: inout GenerationResult.Timings, progress: ProgressHandler?) throws -> Tensor {
        var phaseTimings = timings
        defer { timings = phaseTimings }
        return try inPhase(of: unet) {
            try denoiseSteps(initial, timesteps: timesteps, positive: positive, negative: negative, guidanceScale: guidanceScale,
                             timings: &phaseTimings, progress: progress)
        }
    }

    private func denoiseSteps(_ initial: Tensor, timesteps: [Timestep], positive: Tensor, negative: Tensor?, guidanceScale: Float,
                              timings: inout GenerationResult.Timings, progress: ProgressHandler?) throws -> Tensor {
        let context = try negative.map { try Tensor.concat([$0, positive], axis: 0) } ?? positive   // [2B or B, S, D]
        var latents = initial
        defer {
            try? unet.endCall()   // nothing kept on the device for a next step during the VAE decode
            unetCapture?.endCall()
        }
        let loopStart = Date()
        timings.denoiseStartedAt = loopStart.timeIntervalSince1970
        for (i, t) in timesteps.enumerated() {
            let stepStart = Date()
            OpProfile.beginSection(i == 0 ? "unet_first_step" : "unet_step")
            let doubled = negative == nil ? latents : try Tensor.concat([latents, latents], axis: 0)
            let input = try scheduler.scaleModelInput(doubled, timestep: t).to(dtype)
            let timestep = try Timestep.tensor([t])
            // The scheduler works on the host; the UNet computes wherever it was placed.
            var prediction = try predictNoise(input, timestep: timestep, encoderHiddenStates: context).to(.f32).to(latents.device)
            if negative != nil {
                let halves = try prediction.chunked(2, axis: 0)                                    // uncond, text
                prediction = try halves[0] + (halves[1] - halves[0]) * guidanceScale
            }
            latents = try scheduler.step(modelOutput: prediction.contiguous(), timestep: t, sample: latents).prevSample
            try requireFinite(latents, "denoising step \(i + 1) of \(timesteps.count) (timestep \(t.value))")
            let seconds = Date().timeIntervalSince(stepStart)
            timings.stepSeconds.append(seconds)
            if let progress, !progress(StepEvent(step: i + 1, totalSteps: timesteps.count, timestep: t.value, seconds: seconds)) {
                throw PipelineError.cancelled
            }
        }
        timings.denoiseSeconds = Date().timeIntervalSince(loopStart)
        OpProfile.beginSection(nil)
        return latents
    }

    /// Latents → images in [0, 1] (f32), as `vae.decode(latents / scaling_factor)` then
    /// `(x / 2 + 0.5).clamp(0, 1)`.
    public func decodeLatents(_ latents: Tensor) throws -> Tensor {
        var z = try latents.scaled(by: 1 / vae.config.scalingFactor)
        if let shift = vae.config.shiftFactor { z = try z + shift }
        let decoded = try inPhase(of: vae) { try vae.decode(z.to(dtype)) }
        try requireFinite(decoded, "the VAE decoder's output")
        return try decoded.to(.f32).to(latents.device).scaled(by: 0.5, adding: 0.5).clamped(to: 0...1)
    }
}
