import NN
import Tensor

/// Diffusers' `FluxTransformerBlock` (MM-DiT): the image and text streams, each modulated by
/// its own `AdaLayerNormZero`, attend jointly, then each runs its own tanh-GELU feed-forward;
/// every branch is gated and added back. f16 text states are clipped to ±65504 as Diffusers does.
public final class FluxTransformerBlock: Module, @unchecked Sendable {
    public let norm1: AdaLayerNormZero, norm1Context: AdaLayerNormZero
    public let attn: FluxAttention
    let norm2: LayerNorm, norm2Context: LayerNorm
    public let ff: FeedForward, ffContext: FeedForward

    public init(dim: Int, heads: Int, headDim: Int) {
        norm1 = AdaLayerNormZero(dim)
        norm1Context = AdaLayerNormZero(dim)
        attn = FluxAttention(dim: dim, heads: heads, headDim: headDim, addedDim: dim)
        norm2 = LayerNorm(dim, eps: 1e-6, affine: false)
        ff = FeedForward(dim: dim, activation: .geluTanh)
        norm2Context = LayerNorm(dim, eps: 1e-6, affine: false)
        ffContext = FeedForward(dim: dim, activation: .geluTanh)
        super.init()
        child("norm1", norm1)
        child("norm1_context", norm1Context)
        child("attn", attn)
        child("norm2", norm2)
        child("ff", ff)
        child("norm2_context", norm2Context)
        child("ff_context", ffContext)
    }

    public static func parameterTally(dim: Int, heads: Int, headDim: Int) -> ParameterTally {
        var t = ParameterTally()
        t.add(AdaLayerNormZero.parameterTally(dim), times: 2)
        t.add(FluxAttention.parameterTally(dim: dim, heads: heads, headDim: headDim, addedDim: dim))
        t.add(FeedForward.parameterTally(dim: dim, activation: .geluTanh), times: 2)
        return t
    }

    override public var className: String { "FluxTransformerBlock" }

    /// Image x [B, N, D], text context [B, L, D], conditioning temb [B, D] → (text, image).
    public func callAsFunction(_ x: Tensor, context: Tensor, temb: Tensor, rotary: RotaryEmbedding) throws -> [Tensor] {
        try forward(x, context, temb) { x, context, temb in
            let image = try norm1(x, embedding: temb)
            let text = try norm1Context(context, embedding: temb)
            let (imageAttention, textAttention) = try attn(image.normalized, context: text.normalized, rotary: rotary)
            var h = try x + gated(imageAttention, by: image.gateMSA)
            h = try h + gated(ff(modulated(norm2(h), shift: image.shiftMLP, scale: image.scaleMLP)), by: image.gateMLP)
            var c = try context + gated(textAttention, by: text.gateMSA)
            c = try c + gated(ffContext(modulated(norm2Context(c), shift: text.shiftMLP, scale: text.scaleMLP)), by: text.gateMLP)
            if c.dtype == .f16 { c = try c.clamped(to: -65504...65504) }
            return [c, h]
        }
    }
}

/// Diffusers' `FluxSingleTransformerBlock`: the joint sequence (text first) modulated by
/// `AdaLayerNormZeroSingle`, attention (`pre_only`) and a tanh-GELU MLP side by side, joined by
/// one `proj_out` [D, D + 4D], gated and added back.
public final class FluxSingleTransformerBlock: Module, @unchecked Sendable {
    public let norm: AdaLayerNormZeroSingle
    public let projMLP: Linear, projOut: Linear
    public let attn: FluxAttention

    public init(dim: Int, heads: Int, headDim: Int, mlpRatio: Int = 4) {
        norm = AdaLayerNormZeroSingle(dim)
        projMLP = Linear(dim, dim * mlpRatio)
        projOut = Linear(dim + dim * mlpRatio, dim)
        attn = FluxAttention(dim: dim, heads: heads, headDim: headDim, preOnly: true)
        super.init()
        child("norm", norm)
        child("proj_mlp", projMLP)
        child("proj_out", projOut)
        child("attn", attn)
    }

    public static func parameterTally(dim: Int, heads: Int, headDim: Int, mlpRatio: Int = 4) -> ParameterTally {
        let hidden = ParameterTally.product(dim, mlpRatio)
        var t = AdaLayerNormZeroSingle.parameterTally(dim)
        t.linear(dim, hidden)
        t.linear(ParameterTally.sum(dim, hidden), dim)
        t.add(FluxAttention.parameterTally(dim: dim, heads: heads, headDim: headDim, preOnly: true))
        return t
    }

    override public var className: String { "FluxSingleTransformerBlock" }

    /// Image x [B, N, D], text context [B, L, D], temb [B, D] → (text, image), as Diffusers 0.42
    /// takes and returns the two streams separately.
    public func callAsFunction(_ x: Tensor, context: Tensor, temb: Tensor, rotary: RotaryEmbedding) throws -> [Tensor] {
        try forward(x, context, temb) { x, context, temb in
            let textLength = context.shape[1]
            let joint = try Tensor.concat([context, x], axis: 1)                                  // [B, L + N, D]
            let (normalized, gate) = try norm(joint, embedding: temb)
            let mlp = try projMLP(normalized).gelu(.tanh)                                         // [B, L + N, 4D]
            let attended = try attn(normalized, rotary: rotary)                                   // [B, L + N, D]
            var h = try joint + gated(projOut(Tensor.concat([attended, mlp], axis: 2)), by: gate)
            if h.dtype == .f16 { h = try h.clamped(to: -65504...65504) }
            return try h.split(sizes: [textLength, x.shape[1]], axis: 1)
        }
    }
}
