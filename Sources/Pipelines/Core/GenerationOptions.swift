import Tensor

/// What to generate: the arguments of Diffusers' `StableDiffusionPipeline.__call__` that
/// this pipeline supports.
public struct GenerationOptions: @unchecked Sendable {
    /// One prompt per image group. Ignored when `promptEmbeddings` is given.
    public var prompts: [String]
    public var negativePrompts: [String]?
    /// Precomputed text states [N, S, D] in place of `prompts`.
    public var promptEmbeddings: Tensor?
    public var negativePromptEmbeddings: Tensor?
    public var steps = 50
    /// Classifier-free guidance scale; guidance is off at 1 or below, as in Diffusers.
    public var guidanceScale: Float = 7.5
    /// Pixels; nil means the UNet's sample size × the VAE scale factor. Multiples of 8.
    public var width: Int?
    public var height: Int?
    public var imagesPerPrompt = 1
    /// Seeds the PyTorch-compatible generator, so a seed gives Diffusers' initial noise.
    public var seed: UInt64 = 0
    /// Initial noise [N·imagesPerPrompt, 4, h, w] instead of drawing it.
    public var latents: Tensor?
    /// Diffusers' `guidance_rescale` φ in [0, 1]: the guided prediction rescaled towards the
    /// text prediction's standard deviation (0 is off).
    public var guidanceRescale: Float = 0

    // SDXL's arguments; a pipeline that cannot use one refuses it (`refuseUnsupported`).
    /// Prompts for the second text encoder (`prompt_2`); nil sends `prompts` there too.
    public var prompts2: [String]?
    /// `negative_prompt_2`; nil sends the negative prompts there too.
    public var negativePrompts2: [String]?
    /// Pooled text embeddings [N, P] to go with `promptEmbeddings` (`pooled_prompt_embeds`).
    public var pooledPromptEmbeddings: Tensor?
    public var negativePooledPromptEmbeddings: Tensor?
    /// Diffusers' `clip_skip`: layers skipped from the end of the text encoders.
    public var clipSkip: Int?
    /// `denoising_end` in (0, 1): the call stops that fraction of the way through the schedule
    /// and returns its latents (the base of a base-plus-refiner ensemble).
    public var denoisingEnd: Double?
    /// `denoising_start` in (0, 1), image to image: the call starts that fraction of the way in,
    /// taking the image as latents (the refiner of an ensemble).
    public var denoisingStart: Double?
    /// SDXL's micro-conditioning (`original_size`, `target_size`, `crops_coords_top_left`, …).
    public var microConditioning = MicroConditioning()

    // FLUX's arguments. There `guidanceScale` is the distilled guidance the transformer embeds
    // (Diffusers' default 3.5 for FLUX.1-dev; schnell has no guidance embedding and ignores it),
    // not classifier-free guidance.
    /// `true_cfg_scale`: above 1, with a negative prompt, a second transformer pass per step on
    /// the negative prompt and `neg + s·(pos − neg)` (1 is off).
    public var trueCFGScale: Float = 1
    /// `max_sequence_length`: the T5 tokens of a prompt (padded and truncated to it), at most
    /// 512; nil is Diffusers' 512.
    public var maxSequenceLength: Int?

    public init(prompts: [String] = [], negativePrompts: [String]? = nil) {
        self.prompts = prompts
        self.negativePrompts = negativePrompts
    }

    public init(prompt: String, negativePrompt: String? = nil) {
        self.init(prompts: [prompt], negativePrompts: negativePrompt.map { [$0] })
    }

    /// The image groups of a call: the prompt embeddings' rows where given, else the prompts.
    public var promptCount: Int { promptEmbeddings?.shape.first ?? prompts.count }
}

/// A size in pixels (Diffusers' tuples are (height, width); the command line writes WxH).
public struct ImageSize: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }
}

/// SDXL's micro-conditioning, the time ids the UNet's addition embedding reads. Nil sizes
/// default to the image size; the negative sizes are used only when both are given.
public struct MicroConditioning: Sendable, Equatable {
    public var originalSize: ImageSize?
    public var targetSize: ImageSize?
    /// (top, left).
    public var cropsCoordsTopLeft = (top: 0, left: 0)
    public var negativeOriginalSize: ImageSize?
    public var negativeTargetSize: ImageSize?
    public var negativeCropsCoordsTopLeft = (top: 0, left: 0)
    /// Image to image with `requires_aesthetics_score` (the refiner): default 6.0 and 2.5.
    public var aestheticScore: Float?
    public var negativeAestheticScore: Float?

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.originalSize == b.originalSize && a.targetSize == b.targetSize && a.cropsCoordsTopLeft == b.cropsCoordsTopLeft
            && a.negativeOriginalSize == b.negativeOriginalSize && a.negativeTargetSize == b.negativeTargetSize
            && a.negativeCropsCoordsTopLeft == b.negativeCropsCoordsTopLeft && a.aestheticScore == b.aestheticScore
            && a.negativeAestheticScore == b.negativeAestheticScore
    }
}

/// Progress of a denoising loop, reported after every step.
public struct StepEvent: Sendable {
    public let step: Int
    public let totalSteps: Int
    public let timestep: Float
    /// Seconds this step took.
    public let seconds: Double
}

/// The outcome of a generation: images [B, 3, H, W] in [0, 1] and the timings of each phase.
public struct GenerationResult: @unchecked Sendable {
    public let images: Tensor
    /// The latents the VAE decoded [B, 4, h, w].
    public let latents: Tensor
    public var timings = Timings()
    /// What the call did that its options alone do not say (an argument taken and ignored, as
    /// Diffusers ignores it), for reports.
    public var notes: [String] = []

    public struct Timings: Sendable, Codable {
        public var textEncoderSeconds = 0.0
        public var denoiseSeconds = 0.0
        public var stepSeconds: [Double] = []
        public var vaeEncodeSeconds = 0.0
        public var vaeDecodeSeconds = 0.0
        /// Converting weights to the compute dtype inside the phases (`castWeightsOnLoad: false`),
        /// and freeing the converted copies when a phase ends, kept out of the phase figures above, as the denoising steps always were: Diffusers
        /// converts in `from_pretrained`, so its phases hold no conversion either.
        public var weightCastSeconds = 0.0
        /// When the first denoising step began (seconds since 1970), for start-up figures.
        public var denoiseStartedAt: Double?
    }
}

/// Return `false` to cancel between steps.
public typealias ProgressHandler = (StepEvent) -> Bool

/// The family-specific arguments of `GenerationOptions`, by the names Diffusers and the
/// command line give them: a pipeline lists those it takes and refuses the others.
public enum FamilyOption: String, CaseIterable, Sendable {
    case prompt2 = "prompt_2 (--prompt-2)"
    case negativePrompt2 = "negative_prompt_2 (--negative-prompt-2)"
    case pooledPromptEmbeddings = "pooled_prompt_embeds"
    case clipSkip = "clip_skip"
    case guidanceRescale = "guidance_rescale (--guidance-rescale)"
    case denoisingEnd = "denoising_end (--denoising-end)"
    case denoisingStart = "denoising_start (--denoising-start)"
    case sizeConditioning = "original_size, target_size and crops_coords_top_left (--original-size, --target-size, --crops-coords-top-left and their negatives)"
    case aestheticScore = "aesthetic_score and negative_aesthetic_score (--aesthetic-score, --negative-aesthetic-score)"
    case trueCFGScale = "true_cfg_scale (--true-cfg-scale)"
    case maxSequenceLength = "max_sequence_length (--max-sequence-length)"

    /// Whether `options` sets this argument (to anything but its default).
    func isSet(in options: GenerationOptions) -> Bool {
        let micro = options.microConditioning
        switch self {
        case .prompt2: return options.prompts2 != nil
        case .negativePrompt2: return options.negativePrompts2 != nil
        case .pooledPromptEmbeddings: return options.pooledPromptEmbeddings != nil || options.negativePooledPromptEmbeddings != nil
        case .clipSkip: return options.clipSkip != nil
        case .guidanceRescale: return options.guidanceRescale != 0
        case .denoisingEnd: return options.denoisingEnd != nil
        case .denoisingStart: return options.denoisingStart != nil
        case .sizeConditioning:
            var sizes = micro
            sizes.aestheticScore = nil
            sizes.negativeAestheticScore = nil
            return sizes != MicroConditioning()
        case .aestheticScore: return micro.aestheticScore != nil || micro.negativeAestheticScore != nil
        case .trueCFGScale: return options.trueCFGScale != 1
        case .maxSequenceLength: return options.maxSequenceLength != nil
        }
    }
}

extension GenerationOptions {
    /// Throws `PipelineError.invalidOption` naming the first family argument `options` sets that
    /// `pipeline` does not take (Diffusers' `__call__` would not accept the keyword).
    func refuseUnsupported(_ supported: Set<FamilyOption>, pipeline: String) throws {
        for option in FamilyOption.allCases where !supported.contains(option) && option.isSet(in: self) {
            throw PipelineError.invalidOption("\(pipeline) has no \(option.rawValue)")
        }
    }
}
