import Models
import NN
import Offload
import Schedulers
import Tensor
import Tokenizers

/// Stable Diffusion XL text-to-image (Diffusers' `StableDiffusionXLPipeline`), for the base
/// and for refiner folders, which have no first text encoder: two CLIP text encoders, the
/// second pooled and projected, a UNet with the "text_time" addition embedding.
public final class StableDiffusionXLPipeline: UNetDiffusionPipeline, @unchecked Sendable {
    /// Diffusers' class attributes; the image encoder and feature extractor (IP-Adapter) are
    /// not loaded.
    public static let layout = PipelineLayout(
        className: "StableDiffusionXLPipeline",
        components: ["tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "unet", "vae", "scheduler"],
        optionalComponents: ["tokenizer", "text_encoder"],
        modelCPUOffloadSequence: "text_encoder->text_encoder_2->image_encoder->unet->vae", denoiser: "unet")

    /// CLIP ViT-L's tokenizer and text encoder; nil in refiner folders.
    public let tokenizer: CLIPTokenizer?
    public let textEncoder: CLIPTextModel?
    /// OpenCLIP ViT-bigG's (pads with "!"), and its encoder with the projection of the pooled output.
    public let tokenizer2: CLIPTokenizer
    public let textEncoder2: CLIPTextModelWithProjection
    /// `model_index.json`'s `force_zeros_for_empty_prompt` (the base: true): without a negative
    /// prompt the negative embeddings are zeros, not the encoding of "".
    public let forceZerosForEmptyPrompt: Bool
    /// `requires_aesthetics_score` (the refiner: true): image to image conditions on an
    /// aesthetic score instead of the target size.
    public let requiresAestheticsScore: Bool
    /// SDXL decodes in f32 when an f16 call's VAE says `force_upcast` (`needs_upcasting`).
    override public var upcastsForcedVAE: Bool { true }

    public convenience init(folder: String, dtype: DType = .f32, castWeightsOnLoad: Bool = true) throws {
        try self.init(try LoadedComponents(folder: folder, layout: Self.layout, dtype: dtype, castWeightsOnLoad: castWeightsOnLoad))
    }

    public override init(_ components: LoadedComponents) throws {
        tokenizer = try components.optionalTokenizer("tokenizer")
        textEncoder = try components.optionalModel("text_encoder")
        guard (tokenizer == nil) == (textEncoder == nil) else {
            throw PipelineError.invalidOption("\(components.folder): an SDXL pipeline needs both tokenizer and text_encoder, or neither (a refiner)")
        }
        tokenizer2 = try components.tokenizer("tokenizer_2")
        textEncoder2 = try components.model("text_encoder_2")
        func flag(_ key: String, default value: Bool) throws -> Bool {
            guard let entry = components.index.options.first(where: { $0.key == key }) else { return value }
            guard let bool = entry.value.boolValue else {
                throw PipelineError.invalidOption("\(components.index.path): \(key) must be true or false, not \(entry.value.typeName)")
            }
            return bool
        }
        forceZerosForEmptyPrompt = try flag("force_zeros_for_empty_prompt", default: true)
        requiresAestheticsScore = try flag("requires_aesthetics_score", default: false)
        // Context width: the encoders' hidden sizes side by side must be the UNet's cross-attention width.
        let unet: UNet2DConditionModel = try components.model("unet")
        let context = (textEncoder?.config.hiddenSize ?? 0) + textEncoder2.config.hiddenSize
        guard context == unet.config.crossAttentionDim else {
            throw PipelineError.invalidOption(
                "\(components.folder): the text encoders give \(context)-wide states (\(textEncoder.map { "\($0.config.hiddenSize) + " } ?? "")"
                    + "\(textEncoder2.config.hiddenSize)), but the UNet's cross_attention_dim is \(unet.config.crossAttentionDim)")
        }
        guard unet.config.textTimeEmbedding != nil else {
            throw PipelineError.invalidOption("\(components.folder)/unet/config.json: an SDXL UNet has addition_embed_type \"text_time\"")
        }
        try super.init(components)
    }

    /// Prompt embeddings of an SDXL call: the two encoders' penultimate states side by side
    /// [N, 77, D1 + D2] and the second encoder's pooled projection [N, P]; the negatives with
    /// guidance.
    public struct PromptEmbeddings: @unchecked Sendable {
        public var embeds: Tensor
        public var pooled: Tensor
        public var negativeEmbeds: Tensor?
        public var negativePooled: Tensor?
    }

    /// Diffusers' `encode_prompt`: `prompts` to the first encoder and `prompts2` (default the
    /// same) to the second — a refiner, with one encoder, sends `prompts` to it; states
    /// `hidden_states[-(clipSkip + 2)]`, the negatives always `[-2]`; without a negative prompt
    /// and with `force_zeros_for_empty_prompt` zeros for the negatives.
    public func encodePrompt(_ prompts: [String], prompts2: [String]? = nil, negativePrompts: [String]? = nil,
                             negativePrompts2: [String]? = nil, imagesPerPrompt: Int = 1, classifierFreeGuidance: Bool,
                             clipSkip: Int? = nil) throws -> PromptEmbeddings {
        guard !prompts.isEmpty else { throw PipelineError.invalidOption("the prompt list is empty") }
        let positive = try encodedStates([prompts, prompts2 ?? prompts], hiddenStateFromEnd: (clipSkip ?? 0) + 2)
        var result = PromptEmbeddings(embeds: try repeatRows(positive.states, imagesPerPrompt),
                                      pooled: try repeatRows(positive.pooled, imagesPerPrompt))
        guard classifierFreeGuidance else { return result }
        if negativePrompts == nil && forceZerosForEmptyPrompt {
            result.negativeEmbeds = try Tensor.zeros(result.embeds.shape, dtype: result.embeds.dtype)
            result.negativePooled = try Tensor.zeros(result.pooled.shape, dtype: result.pooled.dtype)
            return result
        }
        func expanded(_ list: [String]?, _ name: String) throws -> [String] {
            let list = list ?? [""]
            guard list.count == prompts.count || list.count == 1 else {
                throw PipelineError.invalidOption("\(list.count) \(name) for \(prompts.count) prompts")
            }
            return list.count == 1 ? Array(repeating: list[0], count: prompts.count) : list
        }
        let negatives = try expanded(negativePrompts, "negative prompts")
        let negatives2 = try negativePrompts2.map { try expanded($0, "second negative prompts") } ?? negatives
        let negative = try encodedStates([negatives, negatives2], hiddenStateFromEnd: 2)
        result.negativeEmbeds = try repeatRows(negative.states, imagesPerPrompt)
        result.negativePooled = try repeatRows(negative.pooled, imagesPerPrompt)
        return result
    }

    /// Each encoder on its prompt list (zip's pairing: a refiner's one encoder takes the first
    /// list), the states of `hidden_states[-k]` concatenated, the pooled output of the second.
    private func encodedStates(_ lists: [[String]], hiddenStateFromEnd k: Int) throws -> (states: Tensor, pooled: Tensor) {
        var encoders: [(tokenizer: CLIPTokenizer, positions: Int, encode: (Tensor) throws -> CLIPTextOutput)] = []
        if let tokenizer, let textEncoder {
            encoders.append((tokenizer, textEncoder.config.maxPositionEmbeddings, { try textEncoder($0, outputHiddenStates: true) }))
        }
        encoders.append((tokenizer2, textEncoder2.config.maxPositionEmbeddings, { try self.textEncoder2($0, outputHiddenStates: true) }))
        var states: [Tensor] = []
        var pooled: Tensor?
        for (texts, encoder) in zip(lists, encoders) {
            let output = try encoder.encode(tokenIDs(texts, tokenizer: encoder.tokenizer, positions: encoder.positions))
            // On the host: a device map may have put the encoders on different devices.
            if pooled == nil, let projected = output.textEmbeds { pooled = try projected.to(.cpu) }
            states.append(try output.hiddenState(fromEnd: k).to(.cpu))
        }
        guard let pooled else { throw PipelineError.invalidOption("text_encoder_2 gave no pooled output") }
        return (try Tensor.concat(states, axis: 2).to(dtype), try pooled.to(dtype))
    }
}
