import Models
import NN
import Offload
import Schedulers
import Tensor
import Tokenizers

/// Stable Diffusion 1.x/2.x text-to-image, loaded from a Diffusers pipeline folder
/// (`model_index.json` with `tokenizer`, `text_encoder`, `unet`, `vae`, `scheduler`).
public final class StableDiffusionPipeline: UNetDiffusionPipeline, @unchecked Sendable {
    /// Diffusers' `StableDiffusionPipeline` class attributes (its `safety_checker`,
    /// `feature_extractor` and `image_encoder` are not loaded: this version has no safety checker
    /// or IP-Adapter).
    public static let layout = PipelineLayout(
        className: "StableDiffusionPipeline", components: ["tokenizer", "text_encoder", "unet", "vae", "scheduler"],
        modelCPUOffloadSequence: "text_encoder->image_encoder->unet->vae", denoiser: "unet")

    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel

    /// Loads every component; weights convert to `dtype` (f32, bf16 or f16) as they load.
    ///
    /// - Parameter castWeightsOnLoad: false keeps the weights as the checkpoint stores them
    ///   (memory-mapped) until they are needed: an offload strategy then casts each group as it
    ///   comes to the execution device, so a bf16 run over an f32 checkpoint never holds every
    ///   bf16 copy at once (on the host's disk tier the resident set stays the groups in use);
    ///   a component left without offloading is converted for each phase of a call that uses
    ///   it and given back to the mapped checkpoint after (with `releasesWeightPagesBetweenPhases`,
    ///   else once, on first use); `to` and device maps convert at once. The numbers are the
    ///   same either way.
    public convenience init(folder: String, dtype: DType = .f32, castWeightsOnLoad: Bool = true) throws {
        try self.init(try LoadedComponents(folder: folder, layout: Self.layout, dtype: dtype, castWeightsOnLoad: castWeightsOnLoad))
    }

    /// The pipeline over components already loaded (`AutoPipeline`, or a folder loaded with
    /// another layout of the same components).
    public override init(_ components: LoadedComponents) throws {
        tokenizer = try components.tokenizer("tokenizer")
        textEncoder = try components.model("text_encoder")
        try super.init(components)
    }

    /// Text states for `prompts` [N·imagesPerPrompt, 77, D] and, with guidance, for the
    /// negative prompts (empty strings when none), as Diffusers' `encode_prompt`.
    public func encodePrompt(_ prompts: [String], negativePrompts: [String]? = nil, imagesPerPrompt: Int = 1,
                             classifierFreeGuidance: Bool) throws -> (positive: Tensor, negative: Tensor?) {
        guard !prompts.isEmpty else { throw PipelineError.invalidOption("the prompt list is empty") }
        guard imagesPerPrompt >= 1 else { throw PipelineError.invalidOption("images per prompt must be at least 1, not \(imagesPerPrompt)") }
        let positive = try repeatRows(textStates(prompts), imagesPerPrompt)
        guard classifierFreeGuidance else { return (positive, nil) }
        let negatives = negativePrompts ?? Array(repeating: "", count: prompts.count)
        guard negatives.count == prompts.count || negatives.count == 1 else {
            throw PipelineError.invalidOption("\(negatives.count) negative prompts for \(prompts.count) prompts")
        }
        let expanded = negatives.count == 1 ? Array(repeating: negatives[0], count: prompts.count) : negatives
        return (positive, try repeatRows(textStates(expanded), imagesPerPrompt))
    }

    /// The text encoder's last hidden state for each prompt.
    func textStates(_ prompts: [String]) throws -> Tensor {
        try textEncoder(tokenIDs(prompts, tokenizer: tokenizer, positions: textEncoder.config.maxPositionEmbeddings)).lastHiddenState
    }
}

/// Token ids [N, L] of `prompts`, padded/truncated to the tokenizer's model_max_length —
/// bounded by the text encoder's `positions`, which is also the length when the tokenizer
/// knows no limit (transformers' int(1e30)): more tokens than positions could never be
/// encoded, and the padding must not be sized by the file.
func tokenIDs(_ prompts: [String], tokenizer: CLIPTokenizer, positions: Int) throws -> Tensor {
    let length = min(tokenizer.modelMaxLength ?? positions, positions)
    var ids: [Int64] = []
    for prompt in prompts {
        ids += tokenizer.encode(prompt, padding: .maxLength, truncation: true, maxLength: length).ids.map { Int64($0) }
    }
    return try Tensor(int64: ids, shape: [prompts.count, length])
}

/// Repeats each row of [N, ...] `times` times in place: [N·times, ...] (`repeat_interleave`-like,
/// the order `num_images_per_prompt` gives).
func repeatRows(_ x: Tensor, _ times: Int) throws -> Tensor {
    guard times > 1 else { return x }
    let rows = try (0..<x.shape[0]).flatMap { i in
        Array(repeating: try x.narrowed(axis: 0, start: i, length: 1), count: times)
    }
    return try Tensor.concat(rows, axis: 0)
}

extension StableDiffusionPipeline: TextToImagePipeline {
    public func imageToImage() -> any ImageToImagePipeline { StableDiffusionImg2ImgPipeline(self) }
}
