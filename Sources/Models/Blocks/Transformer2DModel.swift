import NN
import Tensor

/// Diffusers' `Transformer2DModel` for Stable Diffusion's UNet (continuous input): group norm,
/// `proj_in` (1×1 conv, or linear with `use_linear_projection`), `BasicTransformerBlock`s,
/// `proj_out`, plus the residual.
public final class Transformer2DModel: Module, @unchecked Sendable {
    let norm: GroupNorm
    let projectionIn: Projection, projectionOut: Projection
    public let blocks: ModuleList<BasicTransformerBlock>
    let linearProjection: Bool

    public init(heads: Int, dimHead: Int, inChannels: Int, layers: Int, contextDim: Int, groups: Int,
                linearProjection: Bool, onlyCrossAttention: Bool = false) {
        let inner = heads * dimHead
        norm = GroupNorm(groups: groups, channels: inChannels, eps: 1e-6)
        self.linearProjection = linearProjection
        projectionIn = linearProjection ? .linear(Linear(inChannels, inner)) : .convolution(Conv2d(inChannels, inner, kernelSize: 1))
        projectionOut = linearProjection ? .linear(Linear(inner, inChannels)) : .convolution(Conv2d(inner, inChannels, kernelSize: 1))
        blocks = ModuleList((0..<layers).map { _ in
            BasicTransformerBlock(dim: inner, heads: heads, dimHead: dimHead, contextDim: contextDim, onlyCrossAttention: onlyCrossAttention)
        })
        super.init()
        child("norm", norm)
        child("proj_in", projectionIn.module)
        child("transformer_blocks", blocks)
        child("proj_out", projectionOut.module)
    }

    /// The weights `init` declares, counted without building (keep the two in step).
    public static func parameterTally(heads: Int, dimHead: Int, inChannels: Int, layers: Int, contextDim: Int,
                                      linearProjection: Bool, onlyCrossAttention: Bool = false) -> ParameterTally {
        let inner = ParameterTally.product(heads, dimHead)
        var t = ParameterTally()
        t.norm(inChannels)
        for (input, output) in [(inChannels, inner), (inner, inChannels)] {
            if linearProjection { t.linear(input, output) } else { t.conv(input, output, kernel: 1) }
        }
        var block = ParameterTally()
        for _ in 0..<3 { block.norm(inner) }
        block.add(Attention.parameterTally(queryDim: inner, contextDim: onlyCrossAttention ? contextDim : nil, heads: heads, dimHead: dimHead))
        block.add(Attention.parameterTally(queryDim: inner, contextDim: contextDim, heads: heads, dimHead: dimHead))
        block.add(FeedForward.parameterTally(dim: inner))
        t.add(block, times: layers)
        return t
    }

    /// x [B, C, H, W]; context [B, S, contextDim].
    public func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        try forward(x, context) { x, context in
            let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            var hidden = try norm(x)
            if linearProjection {
                hidden = try projectionIn(hidden.permuted(0, 2, 3, 1).reshaped([b, h * w, c]))     // [B, HW, inner]
            } else {
                hidden = try projectionIn(hidden)
                hidden = try hidden.permuted(0, 2, 3, 1).reshaped([b, h * w, hidden.shape[1]])          // [B, HW, inner]
            }
            for block in blocks.items { hidden = try block(hidden, context: context) }
            let inner = hidden.shape[2]
            if linearProjection {
                hidden = try projectionOut(hidden).reshaped([b, h, w, c]).permuted(0, 3, 1, 2)
            } else {
                hidden = try projectionOut(hidden.reshaped([b, h, w, inner]).permuted(0, 3, 1, 2))
            }
            return try hidden + x
        }
    }

    /// `proj_in` / `proj_out`: a linear layer or a 1×1 convolution, as the config says.
    enum Projection {
        case linear(Linear)
        case convolution(Conv2d)

        var module: Module {
            switch self {
            case .linear(let layer): return layer
            case .convolution(let layer): return layer
            }
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            switch self {
            case .linear(let layer): return try layer(x)
            case .convolution(let layer): return try layer(x)
            }
        }
    }
}

/// Diffusers' `BasicTransformerBlock` (layer_norm variant): self-attention, cross-attention
/// and a GEGLU feed-forward, each pre-normed and residual.
public final class BasicTransformerBlock: Module, @unchecked Sendable {
    let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    let attn1: Attention, attn2: Attention
    let feedForward: FeedForward
    let onlyCrossAttention: Bool

    init(dim: Int, heads: Int, dimHead: Int, contextDim: Int, onlyCrossAttention: Bool) {
        self.onlyCrossAttention = onlyCrossAttention
        norm1 = LayerNorm(dim)
        attn1 = Attention(queryDim: dim, contextDim: onlyCrossAttention ? contextDim : nil, heads: heads, dimHead: dimHead)
        norm2 = LayerNorm(dim)
        attn2 = Attention(queryDim: dim, contextDim: contextDim, heads: heads, dimHead: dimHead)
        norm3 = LayerNorm(dim)
        feedForward = FeedForward(dim: dim)
        super.init()
        child("norm1", norm1)
        child("attn1", attn1)
        child("norm2", norm2)
        child("attn2", attn2)
        child("norm3", norm3)
        child("ff", feedForward)
    }

    public func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        try forward(x, context) { x, context in
            var h = try x + attn1(norm1(x), context: onlyCrossAttention ? context : nil)
            h = try h + attn2(norm2(h), context: context)
            return try h + feedForward(norm3(h))
        }
    }
}
