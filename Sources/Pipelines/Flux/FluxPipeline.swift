import Models
import NN
import Offload
import Schedulers
import Tensor
import Tokenizers

/// FLUX.1 text-to-image (Diffusers' `FluxPipeline`), dev and schnell: CLIP-L's pooled output and
/// T5-XXL's sequence states condition a `FluxTransformer2DModel` that predicts the flow-matching
/// velocity of packed latents; the 16-channel VAE decodes with its shift factor.
public final class FluxPipeline: DiffusionPipeline, @unchecked Sendable {
    /// Diffusers' class attributes; the IP-Adapter's image encoder and feature extractor are not loaded.
    public static let layout = PipelineLayout(
        className: "FluxPipeline",
        components: ["scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer"],
        modelCPUOffloadSequence: "text_encoder->text_encoder_2->image_encoder->transformer->vae", denoiser: "transformer")

    /// Diffusers' defaults: FLUX.1-dev's 28 steps at guidance 3.5 (schnell's model card: 4 steps, guidance 0).
    public static let defaultSteps = 28
    public static let defaultGuidanceScale: Float = 3.5
    /// `max_sequence_length`'s default and limit.
    public static let maximumSequenceLength = 512

    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let tokenizer2: T5Tokenizer
    public let textEncoder2: T5EncoderModel
    public let transformer: FluxTransformer2DModel
    public let vae: AutoencoderKL

    override public var usesFlowMatching: Bool { true }

    public convenience init(folder: String, dtype: DType = .f32, castWeightsOnLoad: Bool = true) throws {
        try self.init(try LoadedComponents(folder: folder, layout: Self.layout, dtype: dtype, castWeightsOnLoad: castWeightsOnLoad))
    }

    public override init(_ components: LoadedComponents) throws {
        tokenizer = try components.tokenizer("tokenizer")
        textEncoder = try components.model("text_encoder")
        tokenizer2 = try components.tokenizer("tokenizer_2", as: T5Tokenizer.self)
        textEncoder2 = try components.model("text_encoder_2")
        transformer = try components.model("transformer")
        vae = try components.model("vae")
        // The widths the components hand each other, checked before anything runs.
        let t = transformer.config, folder = components.folder
        guard t.jointAttentionDim == textEncoder2.config.dModel else {
            throw PipelineError.invalidOption("\(folder): the transformer's joint_attention_dim is \(t.jointAttentionDim), but text_encoder_2 "
                                              + "(T5) gives \(textEncoder2.config.dModel)-wide states (d_model)")
        }
        guard t.pooledProjectionDim == textEncoder.config.hiddenSize else {
            throw PipelineError.invalidOption("\(folder): the transformer's pooled_projection_dim is \(t.pooledProjectionDim), but text_encoder "
                                              + "(CLIP) pools \(textEncoder.config.hiddenSize)-wide vectors (hidden_size)")
        }
        guard t.inChannels == 4 * vae.config.latentChannels, t.outputChannels == t.inChannels else {
            throw PipelineError.invalidOption("\(folder): the transformer takes \(t.inChannels)-channel tokens and gives \(t.outputChannels); "
                                              + "packed 2×2 latents of the VAE's \(vae.config.latentChannels) channels have \(4 * vae.config.latentChannels)")
        }
        try super.init(components)
        guard scheduler is FlowMatchEulerDiscreteScheduler else {
            throw PipelineError.invalidOption("\(folder)/scheduler: FLUX steps a flow-matching velocity; its scheduler must be FlowMatchEulerDiscreteScheduler")
        }
    }

    /// Pixels per latent along each side (8 for FLUX.1's VAE).
    public var vaeScaleFactor: Int { vae.config.downscaleFactor }
    /// Channels of the unpacked latents (the VAE's, 16).
    public var latentChannels: Int { transformer.config.inChannels / 4 }
    /// Diffusers' `default_sample_size` 128 latents: 1024 px for FLUX.1.
    public var defaultImageSize: Int { 128 * vaeScaleFactor }

    /// A call's text conditioning: T5 states [N, L, D] and CLIP's pooled vector [N, P], and the
    /// negatives' for true CFG.
    public struct PromptEmbeddings: @unchecked Sendable {
        public var embeds: Tensor
        public var pooled: Tensor
        public var negativeEmbeds: Tensor?
        public var negativePooled: Tensor?
    }

    /// Diffusers' `encode_prompt`: `prompts` to CLIP (padded to 77, its pooled output) and
    /// `prompts2` (default the same) to T5 (padded and truncated to `maxSequenceLength`), each
    /// repeated `imagesPerPrompt` times.
    public func encodePrompt(_ prompts: [String], prompts2: [String]? = nil, imagesPerPrompt: Int = 1,
                             maxSequenceLength: Int = maximumSequenceLength) throws -> (embeds: Tensor, pooled: Tensor) {
        guard !prompts.isEmpty else { throw PipelineError.invalidOption("the prompt list is empty") }
        let second = prompts2 ?? prompts
        guard second.count == prompts.count else {
            throw PipelineError.invalidOption("\(second.count) second prompts (prompt_2) for \(prompts.count) prompts")
        }
        let clipIDs = try tokenIDs(prompts, tokenizer: tokenizer, positions: textEncoder.config.maxPositionEmbeddings)
        let pooled = try inPhase(of: textEncoder) { try textEncoder(clipIDs).pooledOutput.to(.cpu) }
        var ids: [Int64] = []
        for prompt in second {
            ids += tokenizer2.encode(prompt, padding: .maxLength, truncation: true, maxLength: maxSequenceLength).ids.map { Int64($0) }
        }
        let t5IDs = try Tensor(int64: ids, shape: [second.count, maxSequenceLength])
        let embeds = try inPhase(of: textEncoder2) { try textEncoder2(t5IDs).lastHiddenState.to(.cpu) }
        return (try repeatRows(embeds.to(dtype), imagesPerPrompt), try repeatRows(pooled.to(dtype), imagesPerPrompt))
    }
}
