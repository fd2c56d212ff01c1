import NN
import Tensor

/// Diffusers' `FluxTransformer2DModel` (FLUX.1 dev and schnell): predicts the flow velocity of
/// packed latent tokens [B, N, 64] from T5 sequence states [B, L, 4096], CLIP's pooled vector
/// [B, 768], the timestep (σ, as the pipeline passes it) and, for dev, the distilled guidance
/// scale, through `num_layers` dual-stream and `num_single_layers` single-stream blocks with
/// 3-axis rotary positions. Parameter paths equal the checkpoint's keys.
public final class FluxTransformer2DModel: Module, @unchecked Sendable {
    public let config: FluxTransformer2DConfig
    public let posEmbed: FluxPosEmbed
    public let timeTextEmbed: CombinedTimestepTextProjEmbeddings
    public let contextEmbedder: Linear, xEmbedder: Linear
    public let transformerBlocks: ModuleList<FluxTransformerBlock>
    public let singleTransformerBlocks: ModuleList<FluxSingleTransformerBlock>
    public let normOut: AdaLayerNormContinuous
    public let projOut: Linear

    override public var className: String { "FluxTransformer2DModel" }
    /// Diffusers' `_no_split_modules` (and `_repeated_blocks`).
    override public var noSplitModuleClasses: [String] { ["FluxTransformerBlock", "FluxSingleTransformerBlock"] }
    /// Diffusers' `_skip_layerwise_casting_patterns`: the AdaLN modulations stay in the compute dtype.
    override public var layerwiseCastingSkipPatterns: [String] { ["pos_embed", "norm"] }

    public init(_ config: FluxTransformer2DConfig) {
        self.config = config
        let d = config.innerDim
        posEmbed = FluxPosEmbed(axesDims: config.axesDimsRope)
        timeTextEmbed = CombinedTimestepTextProjEmbeddings(dim: d, pooledDim: config.pooledProjectionDim, guidance: config.guidanceEmbeds)
        contextEmbedder = Linear(config.jointAttentionDim, d)
        xEmbedder = Linear(config.inChannels, d)
        transformerBlocks = ModuleList((0..<config.numLayers).map { _ in
            FluxTransformerBlock(dim: d, heads: config.numAttentionHeads, headDim: config.attentionHeadDim)
        })
        singleTransformerBlocks = ModuleList((0..<config.numSingleLayers).map { _ in
            FluxSingleTransformerBlock(dim: d, heads: config.numAttentionHeads, headDim: config.attentionHeadDim)
        })
        normOut = AdaLayerNormContinuous(d, conditioningDim: d)
        projOut = Linear(d, config.outputChannels)
        super.init()
        child("pos_embed", posEmbed)
        child("time_text_embed", timeTextEmbed)
        child("context_embedder", contextEmbedder)
        child("x_embedder", xEmbedder)
        child("transformer_blocks", transformerBlocks)
        child("single_transformer_blocks", singleTransformerBlocks)
        child("norm_out", normOut)
        child("proj_out", projOut)
    }

    /// The velocity [B, N, outputChannels] of `hiddenStates` [B, N, inChannels].
    /// - Parameters:
    ///   - encoderHiddenStates: the T5 states [B, L, jointAttentionDim].
    ///   - pooledProjections: CLIP's pooled vector [B, pooledProjectionDim].
    ///   - timestep: [B] or one value: σ (the pipeline's `t / 1000`); scaled by 1000 in the model's dtype.
    ///   - imageIds: positions of the image tokens [N, axes]; `textIds` those of the text [L, axes]
    ///     (3-D ids, Diffusers' deprecated form, are read from their first batch entry).
    ///   - guidance: [B] or one value, exactly when the config has `guidance_embeds`.
    public func callAsFunction(_ hiddenStates: Tensor, encoderHiddenStates: Tensor, pooledProjections: Tensor,
                               timestep: Tensor, imageIds: Tensor, textIds: Tensor, guidance: Tensor? = nil) throws -> Tensor {
        try forward(hiddenStates, encoderHiddenStates, pooledProjections, timestep, guidance) { x, context, pooled, timestep, guidance in
            let c = config
            guard x.rank == 3, x.shape[2] == c.inChannels, x.shape[0] > 0, x.shape[1] > 0 else {
                throw ModuleError.invalidInput("\(className) expects latent tokens [B, N, \(c.inChannels)], got \(x.shape)")
            }
            let (b, n) = (x.shape[0], x.shape[1])
            guard context.rank == 3, context.shape[0] == b, context.shape[2] == c.jointAttentionDim else {
                throw ModuleError.invalidInput("\(className) expects text states [\(b), L, \(c.jointAttentionDim)] (joint_attention_dim), got \(context.shape)")
            }
            guard pooled.rank == 2, pooled.shape == [b, c.pooledProjectionDim] else {
                throw ModuleError.invalidInput("\(className) expects a pooled text vector [\(b), \(c.pooledProjectionDim)], got \(pooled.shape)")
            }
            if c.guidanceEmbeds, guidance == nil {
                throw ModuleError.invalidInput("this \(className) embeds the guidance scale (guidance_embeds): pass a guidance value")
            }
            if !c.guidanceEmbeds, guidance != nil {
                throw ModuleError.invalidInput("this \(className) has no guidance embedding (guidance_embeds is false): pass no guidance value")
            }
            let ids = try Tensor.concat([positions(textIds, count: context.shape[1], "text"), positions(imageIds, count: n, "image")], axis: 0)
            let rotary = try posEmbed(ids)

            var h = try xEmbedder(x)                                                               // [B, N, D]
            let temb = try timeTextEmbed(timestep: perSampleValues(timestep, batch: b, "timestep values").to(h.dtype) * 1000,
                                         guidance: guidance.map { try perSampleValues($0, batch: b, "guidance values").to(h.dtype) * 1000 },
                                         pooled: pooled)                                           // [B, D]
            var text = try contextEmbedder(context)                                                // [B, L, D]
            for block in transformerBlocks.items {
                let out = try block(h, context: text, temb: temb, rotary: rotary)
                (text, h) = (out[0], out[1])
            }
            for block in singleTransformerBlocks.items {
                let out = try block(h, context: text, temb: temb, rotary: rotary)
                (text, h) = (out[0], out[1])
            }
            return try projOut(normOut(h, conditioning: temb))                                     // [B, N, out]
        }
    }

    /// Position ids [count, axes] (a 3-D [1, count, axes] is read from its first entry).
    private func positions(_ ids: Tensor, count: Int, _ what: String) throws -> Tensor {
        let axes = config.axesDimsRope.count
        let flat = ids.rank == 3 && ids.shape[0] >= 1 ? try ids.narrowed(axis: 0, start: 0, length: 1).squeezed(0) : ids
        guard flat.rank == 2, flat.shape == [count, axes] else {
            throw ModuleError.invalidInput("\(what) ids must be [\(count), \(axes)] for \(count) \(what) tokens, got \(ids.shape)")
        }
        return try flat.to(.f32)
    }
}

/// Diffusers' `CombinedTimestepTextProjEmbeddings` (schnell) and
/// `CombinedTimestepGuidanceTextProjEmbeddings` (dev): the timestep's (and the guidance's)
/// 256-wide flipped sinusoids, each through its own `TimestepEmbedding`, plus the pooled text
/// vector through a SiLU `PixArtAlphaTextProjection`.
public final class CombinedTimestepTextProjEmbeddings: Module, @unchecked Sendable {
    let timestepEmbedder: TimestepMLP, guidanceEmbedder: TimestepMLP?, textEmbedder: TimestepMLP
    static let projectionWidth = 256

    init(dim: Int, pooledDim: Int, guidance: Bool) {
        timestepEmbedder = TimestepMLP(Self.projectionWidth, dim)
        guidanceEmbedder = guidance ? TimestepMLP(Self.projectionWidth, dim) : nil
        textEmbedder = TimestepMLP(pooledDim, dim)
        super.init()
        timestepEmbedder.register(as: "timestep_embedder", in: self)
        guidanceEmbedder?.register(as: "guidance_embedder", in: self)
        textEmbedder.register(as: "text_embedder", in: self)
    }

    override public var className: String {
        guidanceEmbedder == nil ? "CombinedTimestepTextProjEmbeddings" : "CombinedTimestepGuidanceTextProjEmbeddings"
    }

    /// timestep and guidance [B] (already ×1000), pooled [B, P] → [B, D] in pooled's dtype.
    public func callAsFunction(timestep: Tensor, guidance: Tensor?, pooled: Tensor) throws -> Tensor {
        try forward(timestep, guidance, pooled) { timestep, guidance, pooled in
            func sinusoids(_ t: Tensor) throws -> Tensor {
                try timestepEmbedding(t.to(.f32), dimension: Self.projectionWidth, flipSinToCos: true, downscaleFreqShift: 0).to(pooled.dtype)
            }
            var embedding = try timestepEmbedder(sinusoids(timestep))
            if let guidanceEmbedder, let guidance { embedding = try embedding + guidanceEmbedder(sinusoids(guidance)) }
            return try embedding + textEmbedder(pooled)
        }
    }
}

/// Diffusers' `FluxPosEmbed` (θ 10000): no weights, only the rotary table of the joint
/// sequence's positions. A module of its own so that device maps written for Diffusers' tree
/// (`pos_embed` is its first key) apply as written.
public final class FluxPosEmbed: Module, @unchecked Sendable {
    public let axesDims: [Int]
    public let theta: Double = 10000

    init(axesDims: [Int]) {
        self.axesDims = axesDims
        super.init()
    }

    override public var className: String { "FluxPosEmbed" }

    /// The rotary embedding of `ids` [S, axes].
    public func callAsFunction(_ ids: Tensor) throws -> RotaryEmbedding {
        try forward(ids) { ids in try RotaryEmbedding(positions: ids, axesDims: axesDims, theta: theta) }
    }
}
