import NN

/// The `FluxTransformer2DModel` config fields, with Diffusers' names and defaults (FLUX.1-dev's
/// sizes; schnell differs only in `guidance_embeds`, false).
public struct FluxTransformer2DConfig: Sendable, Equatable {
    public var patchSize = 1
    /// Channels of a packed latent token: 4 × the VAE's latent channels (64 for FLUX.1).
    public var inChannels = 64
    public var outChannels: Int?
    /// Dual-stream blocks (`num_layers`) and single-stream blocks (`num_single_layers`).
    public var numLayers = 19
    public var numSingleLayers = 38
    public var attentionHeadDim = 128
    public var numAttentionHeads = 24
    /// The width of the text encoder's sequence states (T5-XXL's d_model, 4096).
    public var jointAttentionDim = 4096
    /// The width of the pooled text vector (CLIP-L's hidden size, 768).
    public var pooledProjectionDim = 768
    /// The guidance-distilled embedding (FLUX.1-dev): the guidance scale enters as a timestep.
    public var guidanceEmbeds = false
    /// Rotary widths of the three position axes; they add up to `attentionHeadDim`.
    public var axesDimsRope = [16, 56, 56]

    public init() {}

    /// Reads a Diffusers `config.json`: sizes and counts positive and bounded
    /// (`ModelConfig.Limits`; either block list may be empty), `axes_dims_rope` even widths that
    /// add up to `attention_head_dim`, and the implied weights within the limits.
    public init(_ config: ModelConfig) throws {
        let c = config
        patchSize = try c.size("patch_size", default: patchSize)
        inChannels = try c.size("in_channels", default: inChannels)
        outChannels = try c.optionalInt("out_channels").map { _ in try c.size("out_channels") }
        numLayers = try c.int("num_layers", in: 0...ModelConfig.Limits.repeats, default: numLayers)
        numSingleLayers = try c.int("num_single_layers", in: 0...ModelConfig.Limits.repeats, default: numSingleLayers)
        attentionHeadDim = try c.size("attention_head_dim", default: attentionHeadDim)
        numAttentionHeads = try c.size("num_attention_heads", default: numAttentionHeads)
        jointAttentionDim = try c.size("joint_attention_dim", default: jointAttentionDim)
        pooledProjectionDim = try c.size("pooled_projection_dim", default: pooledProjectionDim)
        guidanceEmbeds = try c.bool("guidance_embeds", default: guidanceEmbeds)
        if c.contains("axes_dims_rope") {
            axesDimsRope = try c.ints("axes_dims_rope", in: 1...ModelConfig.Limits.size, count: 1...16)
        }
        try c.require(axesDimsRope.allSatisfy { $0 % 2 == 0 },
                      "axes_dims_rope \(axesDimsRope) must be even widths (each rotates pairs of channels)")
        try c.require(axesDimsRope.reduce(0, +) == attentionHeadDim,
                      "axes_dims_rope \(axesDimsRope) add up to \(axesDimsRope.reduce(0, +)), not attention_head_dim = \(attentionHeadDim)")
        try c.require(ParameterTally.product(numAttentionHeads, attentionHeadDim) <= ModelConfig.Limits.size,
                      "num_attention_heads × attention_head_dim = \(numAttentionHeads) × \(attentionHeadDim) is wider than any model")
        try impliedParameters.checkWithinLimits(config: c.path)
    }

    /// Heads × head width: the width of both streams.
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    /// Channels of an output token (`patch_size² × out_channels`).
    public var outputChannels: Int { patchSize * patchSize * (outChannels ?? inChannels) }

    /// The weights `FluxTransformer2DModel(self)` declares, counted without building it; each
    /// term mirrors a constructor, and the tests compare it with built models.
    public var impliedParameters: ParameterTally {
        let d = ParameterTally.product(numAttentionHeads, attentionHeadDim)
        var t = ParameterTally()
        t.add(TimestepMLP.parameterTally(256, d), times: guidanceEmbeds ? 2 : 1)
        t.add(TimestepMLP.parameterTally(pooledProjectionDim, d))
        t.linear(jointAttentionDim, d)
        t.linear(inChannels, d)
        t.add(FluxTransformerBlock.parameterTally(dim: d, heads: numAttentionHeads, headDim: attentionHeadDim), times: numLayers)
        t.add(FluxSingleTransformerBlock.parameterTally(dim: d, heads: numAttentionHeads, headDim: attentionHeadDim), times: numSingleLayers)
        t.add(AdaLayerNormContinuous.parameterTally(d, conditioningDim: d))
        t.linear(d, ParameterTally.product(ParameterTally.product(patchSize, patchSize), outChannels ?? inChannels))
        return t
    }
}
