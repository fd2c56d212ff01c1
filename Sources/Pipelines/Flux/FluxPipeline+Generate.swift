import Foundation
import Models
import NN
import Schedulers
import Tensor

extension FluxPipeline {
    /// What a FLUX call resolved before it computes: the latent size, the T5 length, whether it
    /// runs true CFG, and what it took and ignored (as Diffusers ignores it).
    struct Call {
        var width: Int, height: Int
        /// The unpacked latents' size.
        var latentHeight: Int, latentWidth: Int
        var maxSequenceLength: Int
        var trueCFG: Bool
        var notes: [String] = []
        var imageSequenceLength: Int { (latentHeight / 2) * (latentWidth / 2) }
    }

    /// The family arguments FLUX takes.
    static let supportedOptions: Set<FamilyOption> = [.prompt2, .negativePrompt2, .pooledPromptEmbeddings, .trueCFGScale, .maxSequenceLength]

    /// Text to image, as Diffusers' `FluxPipeline.__call__`: encode the prompts (and the negatives
    /// for true CFG), draw (or take) the unpacked noise and pack it, shift the schedule by the
    /// image's token count, denoise with the distilled guidance, unpack and decode.
    public func generate(_ options: GenerationOptions, progress: ProgressHandler? = nil) throws -> GenerationResult {
        try restartingOnAttentionPlanDown { try generateOnce(options, progress: progress) }
    }

    /// One run of `generate` (`restartingOnAttentionPlanDown` may make two).
    private func generateOnce(_ options: GenerationOptions, progress: ProgressHandler?) throws -> GenerationResult {
        defer { modelOffload?.offloadAll() }
        let call = try resolvedCall(options, pipeline: Self.layout.className)
        try castPendingWeights()
        var timings = GenerationResult.Timings()
        defer { OpProfile.beginSection(nil) }
        let prompt = try promptPhase(options, call: call, timings: &timings)
        let batch = prompt.embeds.shape[0]

        var generator = TorchGenerator(seed: options.seed)
        var noise = try initialNoise(options, shape: [batch] + initialNoiseShape(options), what: "the unpacked noise ", generator: &generator)
        // Diffusers holds the latents in the prompt embeddings' dtype.
        noise = try noise.to(dtype).to(.f32)
        try setSchedule(steps: options.steps, imageSequenceLength: call.imageSequenceLength)
        scheduler.generator = generator
        let latents = try denoise(FluxLatents.pack(noise), timesteps: scheduler.timesteps, prompt: prompt, call: call,
                                  options: options, timings: &timings, progress: progress)
        return try finish(latents, call: call, timings: timings)
    }

    /// One image's unpacked noise [C, h, w] at the options' size (floored as the call floors it).
    public func initialNoiseShape(_ options: GenerationOptions) -> [Int] {
        let latent = FluxLatents.latentSize(width: options.width ?? defaultImageSize, height: options.height ?? defaultImageSize,
                                            vaeScaleFactor: vaeScaleFactor)
        return [latentChannels, latent.height, latent.width]
    }

    /// The checks before anything runs: the family arguments, `max_sequence_length` (at most
    /// 512, Diffusers' error), the size (floored to multiples of 2·vaeScaleFactor with a note,
    /// as Diffusers warns and floors), the shared checks, and a schedule the scheduler can make.
    func resolvedCall(_ options: GenerationOptions, pipeline: String) throws -> Call {
        try options.refuseUnsupported(Self.supportedOptions, pipeline: pipeline)
        let length = options.maxSequenceLength ?? Self.maximumSequenceLength
        guard length >= 1, length <= Self.maximumSequenceLength else {
            throw PipelineError.invalidOption("max_sequence_length cannot be greater than \(Self.maximumSequenceLength) (nor below 1), but is \(length)")
        }
        guard options.trueCFGScale.isFinite else {
            throw PipelineError.invalidOption("true_cfg_scale must be a finite number, not \(options.trueCFGScale)")
        }
        let unit = 2 * vaeScaleFactor
        let width = options.width ?? defaultImageSize, height = options.height ?? defaultImageSize
        for (name, value) in [("width", width), ("height", height)] where value > 0 && value < unit {
            throw PipelineError.invalidOption("the \(name) must be at least \(unit) pixels for FLUX (one 2×2 patch of latents), not \(value)")
        }
        let latent = FluxLatents.latentSize(width: width, height: height, vaeScaleFactor: vaeScaleFactor)
        var call = Call(width: width, height: height, latentHeight: latent.height, latentWidth: latent.width,
                        maxSequenceLength: length, trueCFG: false)
        let (checkedWidth, checkedHeight) = try validatedCall(options, defaultSize: defaultImageSize, multiple: 1,
                                                              scaling: "FLUX floors other sizes to multiples of \(unit)") {
            try self.setSchedule(steps: options.steps, imageSequenceLength: call.imageSequenceLength)
        }
        (call.width, call.height) = (checkedWidth, checkedHeight)
        if width % unit != 0 || height % unit != 0 {
            call.notes.append("height and width have to be divisible by \(unit) but are \(height) and \(width); the image is "
                              + "\(latent.width * vaeScaleFactor)×\(latent.height * vaeScaleFactor) (as Diffusers resizes them)")
        }
        let negative = options.negativePrompts != nil || options.negativePromptEmbeddings != nil
        call.trueCFG = options.trueCFGScale > 1 && negative
        if options.trueCFGScale > 1 && !negative {
            call.notes.append("true_cfg_scale \(options.trueCFGScale) was ignored: true CFG needs a negative prompt, and Diffusers runs without it")
        }
        if negative && options.trueCFGScale <= 1 {
            call.notes.append("the negative prompt was ignored: it takes effect only with true_cfg_scale above 1, as in Diffusers")
        }
        if !transformer.config.guidanceEmbeds && options.guidanceScale != Self.defaultGuidanceScale && options.guidanceScale != 0 {
            call.notes.append("the guidance scale \(options.guidanceScale) was ignored: this transformer has no guidance embedding "
                              + "(guidance_embeds is false, as FLUX.1-schnell), and Diffusers passes none")
        }
        return call
    }

    /// FluxPipeline's schedule: `linspace(1, 1/N, N)` sigmas shifted by μ from the image's token
    /// count (`calculate_shift` with the scheduler config's lengths and shifts), begin index 0.
    public func setSchedule(steps: Int, imageSequenceLength: Int) throws {
        guard var flow = scheduler as? FlowMatchEulerDiscreteScheduler else {
            throw PipelineError.invalidOption("FLUX needs the flow-match scheduler, not \(type(of: scheduler))")
        }
        guard steps >= 1 else { throw PipelineError.invalidOption("the step count must be at least 1, not \(steps)") }
        let mu = try flow.calculateShift(imageSequenceLength: imageSequenceLength)
        try flow.setTimesteps(steps, sigmas: FlowMatchEulerDiscreteScheduler.linearSigmas(count: steps), mu: mu)
        flow.setBeginIndex(0)
        scheduler = flow
    }

    /// The prompt phase: CLIP and T5 on the prompts (or the given embeddings), and on the
    /// negatives when the call runs true CFG.
    func promptPhase(_ options: GenerationOptions, call: Call, timings: inout GenerationResult.Timings) throws -> PromptEmbeddings {
        try conditioningPhase(options, timings: &timings, encode: { try encodedPrompt(options, call: call) }, tensors: { prompt in
            [("prompt embeddings", prompt.embeds), ("pooled prompt embeddings", prompt.pooled)]
                + (prompt.negativeEmbeds.map { [("negative prompt embeddings", $0)] } ?? [])
                + (prompt.negativePooled.map { [("negative pooled prompt embeddings", $0)] } ?? [])
        })
    }

    private func encodedPrompt(_ options: GenerationOptions, call: Call) throws -> PromptEmbeddings {
        let n = options.imagesPerPrompt
        func given(_ embeds: Tensor, _ pooled: Tensor?, _ what: String) throws -> (Tensor, Tensor) {
            guard let pooled else { throw PipelineError.invalidOption("\(what) embeddings need pooled \(what) embeddings too") }
            let (d, p) = (transformer.config.jointAttentionDim, transformer.config.pooledProjectionDim)
            guard embeds.rank == 3, embeds.shape[2] == d, pooled.rank == 2, pooled.shape == [embeds.shape[0], p] else {
                throw PipelineError.invalidOption("\(what) embeddings must be [N, L, \(d)] with pooled [N, \(p)], got \(embeds.shape) and \(pooled.shape)")
            }
            return (try repeatRows(embeds.to(dtype), n), try repeatRows(pooled.to(dtype), n))
        }
        let positive: (Tensor, Tensor)
        if let embeds = options.promptEmbeddings {
            positive = try given(embeds, options.pooledPromptEmbeddings, "prompt")
        } else {
            positive = try encodePrompt(options.prompts, prompts2: options.prompts2, imagesPerPrompt: n, maxSequenceLength: call.maxSequenceLength)
        }
        var result = PromptEmbeddings(embeds: positive.0, pooled: positive.1)
        guard call.trueCFG else { return result }
        let negative: (Tensor, Tensor)
        if let embeds = options.negativePromptEmbeddings {
            negative = try given(embeds, options.negativePooledPromptEmbeddings, "negative prompt")
        } else {
            let count = options.promptEmbeddings?.shape[0] ?? options.prompts.count
            let prompts = options.negativePrompts ?? [""]
            func expanded(_ list: [String]) -> [String] { list.count == 1 ? Array(repeating: list[0], count: count) : list }
            negative = try encodePrompt(expanded(prompts), prompts2: options.negativePrompts2.map(expanded), imagesPerPrompt: n,
                                        maxSequenceLength: call.maxSequenceLength)
        }
        guard negative.0.shape == result.embeds.shape else {
            throw PipelineError.invalidOption("the negative prompt embeddings \(negative.0.shape) must have the prompt embeddings' shape \(result.embeds.shape)")
        }
        (result.negativeEmbeds, result.negativePooled) = negative
        return result
    }

    /// The loop shared by text-to-image and image-to-image: the transformer on the packed
    /// latents with σ and the distilled guidance (dev), a second pass on the negatives for true
    /// CFG; the latents rounded to the pipeline's dtype after each step, as Diffusers holds them.
    func denoise(_ initial: Tensor, timesteps: [Timestep], prompt: PromptEmbeddings, call: Call, options: GenerationOptions,
                 timings: inout GenerationResult.Timings, progress: ProgressHandler?) throws -> Tensor {
        let batch = initial.shape[0]
        let imageIds = try FluxLatents.imageIds(height: call.latentHeight, width: call.latentWidth, dtype: dtype)
        let textIds = try Tensor.zeros([prompt.embeds.shape[1], 3])
        let guidance = transformer.config.guidanceEmbeds ? try Tensor([Float](repeating: options.guidanceScale, count: batch), shape: [batch]) : nil
        let thousand = try Tensor([Float](repeating: 1000, count: batch), shape: [batch]).to(dtype)
        return try denoisingLoop(initial, timesteps: timesteps, latentDType: dtype, timings: &timings, progress: progress) { latents, t in
            let x = try latents.to(dtype)
            // `t.expand(B).to(latents.dtype) / 1000`, divided in the latents' dtype.
            let sigma = try Tensor([Float](repeating: t.value, count: batch), shape: [batch]).to(dtype) / thousand
            func velocity(_ embeds: Tensor, _ pooled: Tensor) throws -> Tensor {
                try transformer(x, encoderHiddenStates: embeds, pooledProjections: pooled, timestep: sigma,
                                imageIds: imageIds, textIds: textIds, guidance: guidance).to(.f32).to(latents.device)
            }
            let positive = try velocity(prompt.embeds, prompt.pooled)
            guard let negativeEmbeds = prompt.negativeEmbeds, let negativePooled = prompt.negativePooled else { return positive }
            let negative = try velocity(negativeEmbeds, negativePooled)
            return try negative + (positive - negative) * options.trueCFGScale
        }
    }

    /// Unpacks the final latents and decodes them (no VAE upcast: FLUX ignores `force_upcast`).
    func finish(_ latents: Tensor, call: Call, timings: GenerationResult.Timings) throws -> GenerationResult {
        var timings = timings
        let unpacked = try FluxLatents.unpack(latents, height: call.latentHeight, width: call.latentWidth)
        let images = try decodePhase(unpacked, timings: &timings)
        var result = GenerationResult(images: images, latents: unpacked, timings: timings)
        result.notes = call.notes
        return result
    }
}
