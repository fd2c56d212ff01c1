import NN
import Tensor

/// transformers' `T5EncoderModel` (FLUX's and SD3's `text_encoder_2`), or `UMT5EncoderModel`
/// when the config is UMT5's: the token embedding `shared`, then `encoder.block.N` (pre-norm
/// self-attention with a relative position bias, then a feed-forward layer), then
/// `encoder.final_layer_norm`. Parameter paths equal the checkpoint's keys.
///
/// Checkpoints: transformers 5 writes the embedding once, as `shared.weight`; older files also
/// carry its tied copy `encoder.embed_tokens.weight`, which loads into the same slot (either
/// key alone is enough). A full encoder–decoder checkpoint's `decoder.*` and `lm_head.weight`
/// keys are ignored.
public final class T5EncoderModel: Module, @unchecked Sendable {
    public let config: T5Config
    public let shared: Embedding
    public let encoder: T5Stack

    public init(_ config: T5Config) {
        self.config = config
        shared = Embedding(config.vocabSize, config.dModel)
        encoder = T5Stack(config)
        super.init()
        child("shared", shared)
        child("encoder", encoder)
    }

    override public var className: String { config.relativeAttentionBiasInEveryBlock ? "UMT5EncoderModel" : "T5EncoderModel" }
    /// transformers' `_no_split_modules`.
    override public var noSplitModuleClasses: [String] { [T5Block.className(config)] }

    /// Block-level group offloading descends into `encoder` and groups its `block` list. (In
    /// Diffusers a transformers T5 declares no `_group_offload_block_modules`, so block level
    /// makes the whole encoder one group unless `block_modules=["encoder"]` is passed; here that
    /// is the default, so that blocks-per-group means what the guide's text-encoder example
    /// expects.)
    override public var groupOffloadBlockModules: [String] { ["encoder"] }

    /// transformers' `_keep_in_fp32_modules`: in a float16 load the feed-forward output
    /// projections stay float32 (`loadKeepingFP32Modules`).
    public static let keepInFP32Modules = ["wo"]

    override public func parameterPath(forCheckpointKey key: String) -> String? {
        key == "encoder.embed_tokens.weight" ? "shared.weight" : nil
    }

    /// The decoder's keys of a `T5ForConditionalGeneration` / `UMT5ForConditionalGeneration`
    /// checkpoint with `num_decoder_layers` blocks (either feed-forward kind, a bias in any
    /// block), and the tied `lm_head`: what transformers' `_keys_to_ignore_on_load_unexpected`
    /// (`decoder`) lets an encoder skip.
    override public var ignoredCheckpointKeys: [String] {
        var keys = ["decoder.embed_tokens.weight", "decoder.final_layer_norm.weight", "lm_head.weight"]
        for n in 0..<config.numDecoderLayers {
            let block = "decoder.block.\(n).layer."
            for (layer, attention) in [(0, "SelfAttention"), (1, "EncDecAttention")] {
                keys += ["q", "k", "v", "o", "relative_attention_bias"].map { "\(block)\(layer).\(attention).\($0).weight" }
                keys.append("\(block)\(layer).layer_norm.weight")
            }
            keys += ["wi", "wi_0", "wi_1", "wo"].map { "\(block)2.DenseReluDense.\($0).weight" }
            keys.append("\(block)2.layer_norm.weight")
        }
        return keys
    }

    /// Encodes token ids [B, S] (integers; FLUX pads to 512 with id 0 and passes no mask).
    /// `attentionMask` [B, S] marks the keys each row may attend (nonzero = attend, as
    /// transformers' 0/1 `attention_mask`); without it every position, pads included, attends.
    public func callAsFunction(_ inputIds: Tensor, attentionMask: Tensor? = nil) throws -> T5EncoderOutput {
        try forward(inputIds, attentionMask) { ids, mask in
            guard ids.rank == 2, !ids.dtype.isFloatingPoint, ids.dtype != .bool, ids.shape[0] > 0, ids.shape[1] > 0 else {
                throw ModuleError.invalidInput("\(className) expects integer token ids [batch, length], got \(ids.dtype) \(ids.shape)")
            }
            if let bad = try ids.int64s().first(where: { $0 < 0 || $0 >= Int64(config.vocabSize) }) {
                throw ModuleError.invalidInput("token id \(bad) is outside \(className)'s vocabulary of \(config.vocabSize)")
            }
            var keep: [Bool]?
            if let mask {
                guard mask.shape == ids.shape else {
                    throw ModuleError.invalidInput("the attention mask has shape \(mask.shape); the token ids have \(ids.shape)")
                }
                keep = try mask.floats().map { $0 != 0 }
            }
            let embeds = try shared(ids)                                                  // [B, S, D]
            return T5EncoderOutput(lastHiddenState: try encoder(embeds, keep: keep))
        }
    }

    /// `load(from:dtype:device:)`, except that in a float16 load the `keepInFP32Modules`
    /// weights are read again from the checkpoint as float32, as transformers'
    /// `from_pretrained(dtype=torch.float16)` keeps them (the residual stream then becomes f32
    /// after the first feed-forward layer). Other dtypes load as `load(from:)` does.
    public func loadKeepingFP32Modules(from checkpoint: Checkpoint, dtype: DType?, device: Device = .cpu) throws {
        try load(from: checkpoint, dtype: dtype, device: device)
        guard dtype == .f16 else { return }
        let kept = Dictionary(uniqueKeysWithValues: namedParameters().filter { path, _ in
            path.split(separator: ".").contains { Self.keepInFP32Modules.contains(String($0)) }
        })
        try checkpoint.forEachShard { _, tensors in
            for (name, tensor) in tensors {
                guard let slot = kept[name] else { continue }
                slot.value = try tensor.to(.f32).to(device)
            }
        }
    }
}

/// What `T5EncoderModel` returns.
public struct T5EncoderOutput: @unchecked Sendable {
    /// [B, S, d_model], after `encoder.final_layer_norm`.
    public var lastHiddenState: Tensor
}

/// transformers' `T5Stack` as the encoder: `block.N` and `final_layer_norm` (the token
/// embedding is the model's `shared`).
public final class T5Stack: Module, @unchecked Sendable {
    public let block: ModuleList<T5Block>
    public let finalLayerNorm: RMSNorm
    let biasInEveryBlock: Bool

    init(_ config: T5Config) {
        biasInEveryBlock = config.relativeAttentionBiasInEveryBlock
        block = ModuleList((0..<config.numLayers).map { T5Block(config, hasRelativeAttentionBias: $0 == 0 || config.relativeAttentionBiasInEveryBlock) })
        finalLayerNorm = RMSNorm(config.dModel, eps: config.layerNormEpsilon, className: "T5LayerNorm")
        super.init()
        child("block", block)
        child("final_layer_norm", finalLayerNorm)
    }

    override public var className: String { "T5Stack" }

    /// The blocks over `hidden` [B, S, D]; T5 computes the position bias once, in block 0, and
    /// passes it on to every later block; UMT5 computes one in each.
    func callAsFunction(_ hidden: Tensor, keep: [Bool]?) throws -> Tensor {
        try forward(hidden) { hidden in
            var h = hidden
            var bias: Tensor?
            for layer in block.items {
                let (out, used) = try layer(h, positionBias: biasInEveryBlock ? nil : bias, keep: keep)
                h = out
                bias = used
            }
            return try finalLayerNorm(h)
        }
    }
}

/// transformers' `T5Block` (`UMT5Block`): `layer.0` self-attention, `layer.1` feed-forward,
/// each pre-normed with a residual; f16 values are clamped after each, as transformers does.
public final class T5Block: Module, @unchecked Sendable {
    public let selfAttention: T5LayerSelfAttention
    public let feedForward: T5LayerFF
    private let name: String

    init(_ config: T5Config, hasRelativeAttentionBias: Bool) {
        selfAttention = T5LayerSelfAttention(config, hasRelativeAttentionBias: hasRelativeAttentionBias)
        feedForward = T5LayerFF(config)
        name = T5Block.className(config)
        super.init()
        let layer = child("layer", Module())
        layer.child("0", selfAttention)
        layer.child("1", feedForward)
    }

    static func className(_ config: T5Config) -> String { config.relativeAttentionBiasInEveryBlock ? "UMT5Block" : "T5Block" }
    override public var className: String { name }

    func callAsFunction(_ hidden: Tensor, positionBias: Tensor?, keep: [Bool]?) throws -> (Tensor, Tensor?) {
        try forward(hidden, positionBias) { hidden, positionBias in
            let (attended, bias) = try selfAttention(hidden, positionBias: positionBias, keep: keep)
            let h = try clampedForFloat16(attended)
            return (try clampedForFloat16(feedForward(h)), bias)
        }
    }

    /// transformers' fp16 guard: f16 values clamped to ±(65504 − 1000) when any is infinite,
    /// else ±65504 (which only turns infinities finite). Other dtypes pass unchanged.
    private func clampedForFloat16(_ h: Tensor) throws -> Tensor {
        guard h.dtype == .f16 else { return h }
        let largest: Float = 65504
        let bound = try h.floats().contains(where: \.isInfinite) ? largest - 1000 : largest
        return try h.clamped(to: -bound...bound)
    }
}

/// transformers' `T5LayerSelfAttention`: `h + SelfAttention(layer_norm(h))`.
public final class T5LayerSelfAttention: Module, @unchecked Sendable {
    public let attention: T5Attention
    public let layerNorm: RMSNorm

    init(_ config: T5Config, hasRelativeAttentionBias: Bool) {
        attention = T5Attention(config, hasRelativeAttentionBias: hasRelativeAttentionBias)
        layerNorm = RMSNorm(config.dModel, eps: config.layerNormEpsilon, className: "T5LayerNorm")
        super.init()
        child("SelfAttention", attention)
        child("layer_norm", layerNorm)
    }

    override public var className: String { "T5LayerSelfAttention" }

    func callAsFunction(_ hidden: Tensor, positionBias: Tensor?, keep: [Bool]?) throws -> (Tensor, Tensor?) {
        try forward(hidden, positionBias) { hidden, positionBias in
            let (attended, bias) = try attention(layerNorm(hidden), positionBias: positionBias, keep: keep)
            return (try hidden + attended, bias)
        }
    }
}

/// transformers' `T5LayerFF`: `h + DenseReluDense(layer_norm(h))`.
public final class T5LayerFF: Module, @unchecked Sendable {
    public let dense: T5DenseActDense
    public let layerNorm: RMSNorm

    init(_ config: T5Config) {
        dense = T5DenseActDense(config)
        layerNorm = RMSNorm(config.dModel, eps: config.layerNormEpsilon, className: "T5LayerNorm")
        super.init()
        child("DenseReluDense", dense)
        child("layer_norm", layerNorm)
    }

    override public var className: String { "T5LayerFF" }

    func callAsFunction(_ hidden: Tensor) throws -> Tensor {
        try forward(hidden) { hidden in try hidden + dense(layerNorm(hidden)) }
    }
}

/// The feed-forward of `T5LayerFF`: `T5DenseGatedActDense` (`wi_0`, `wi_1`, `wo`:
/// `wo(gelu_new(wi_0(x)) · wi_1(x))`) for "gated-gelu", `T5DenseActDense` (`wi`, `wo`:
/// `wo(relu(wi(x)))`) for "relu". No biases.
public final class T5DenseActDense: Module, @unchecked Sendable {
    public let wi: Linear?
    public let wi0: Linear?, wi1: Linear?
    public let wo: Linear
    let gated: Bool

    init(_ config: T5Config) {
        gated = config.feedForwardProj.isGated
        wi = gated ? nil : Linear(config.dModel, config.dFF, bias: false)
        wi0 = gated ? Linear(config.dModel, config.dFF, bias: false) : nil
        wi1 = gated ? Linear(config.dModel, config.dFF, bias: false) : nil
        wo = Linear(config.dFF, config.dModel, bias: false)
        super.init()
        if let wi { child("wi", wi) }
        if let wi0, let wi1 {
            child("wi_0", wi0)
            child("wi_1", wi1)
        }
        child("wo", wo)
    }

    override public var className: String { gated ? "T5DenseGatedActDense" : "T5DenseActDense" }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            var h: Tensor                                                        // [B, S, F]
            if let wi0, let wi1 {
                // gelu_new(wi_0(x)) · wi_1(x), the activation rounded to its dtype first.
                h = try wi1(x).gated(by: wi0(x), activation: .geluTanh)
            } else if let wi {
                h = try wi(x).relu()
            } else {
                throw ModuleError.invalidInput("T5 feed-forward has no input projection")
            }
            // As transformers: the input of `wo` takes wo's dtype (float32 `wo` of a float16
            // load); a storage-only dtype (layerwise casting's f8) is left to the layer's cast.
            if let dtype = wo.weight.value?.dtype, dtype.isComputeType, dtype != h.dtype { h = try h.to(dtype) }
            return try wo(h)                                                     // [B, S, D]
        }
    }
}
