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

    public init(prompts: [String] = [], negativePrompts: [String]? = nil) {
        self.prompts = prompts
        self.negativePrompts = negativePrompts
    }

    public init(prompt: String, negativePrompt: String? = nil) {
        self.init(prompts: [prompt], negativePrompts: negativePrompt.map { [$0] })
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
