import NN
import Tensor

/// Diffusers' `Attention` (AttnProcessor2_0 semantics): `to_q`, `to_k`, `to_v`, `to_out.0`;
/// self-attention, or cross-attention when a context is given. On [B, C, H, W] input (the
/// VAE's mid-block) it optionally group-normalises, attends over the H·W positions and adds
/// the residual, as the processor does for 4-D hidden states.
public final class Attention: Module, AttentionLayer, @unchecked Sendable {
    public let heads: Int
    public let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    public let groupNorm: GroupNorm?
    public let residualConnection: Bool
    /// How the scores are computed; by default tiled, so that no more than one tile's worth of
    /// them is ever held at once.
    public var kernel: AttentionKernel = .auto

    public init(queryDim: Int, contextDim: Int? = nil, heads: Int, dimHead: Int, bias: Bool = false, outBias: Bool = true,
                groupNorm: (groups: Int, eps: Float)? = nil, residualConnection: Bool = false) {
        self.heads = heads
        let inner = heads * dimHead
        toQ = Linear(queryDim, inner, bias: bias)
        toK = Linear(contextDim ?? queryDim, inner, bias: bias)
        toV = Linear(contextDim ?? queryDim, inner, bias: bias)
        toOut = Linear(inner, queryDim, bias: outBias)
        self.groupNorm = groupNorm.map { GroupNorm(groups: $0.groups, channels: queryDim, eps: $0.eps) }
        self.residualConnection = residualConnection
        super.init()
        if let norm = self.groupNorm { child("group_norm", norm) }
        child("to_q", toQ)
        child("to_k", toK)
        child("to_v", toV)
        child("to_out", ModuleList([toOut]))
    }

    /// The weights `init` declares, counted without building (keep the two in step).
    public static func parameterTally(queryDim: Int, contextDim: Int? = nil, heads: Int, dimHead: Int, bias: Bool = false,
                                      outBias: Bool = true, groupNorm: Bool = false) -> ParameterTally {
        let inner = ParameterTally.product(heads, dimHead)
        var t = ParameterTally()
        if groupNorm { t.norm(queryDim) }
        t.linear(queryDim, inner, bias: bias)
        t.linear(contextDim ?? queryDim, inner, bias: bias)
        t.linear(contextDim ?? queryDim, inner, bias: bias)
        t.linear(inner, queryDim, bias: outBias)
        return t
    }

    /// Attention over `x` [B, S, C] (or [B, C, H, W]); keys and values from `context` [B, S', C'] when given.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil) throws -> Tensor {
        try forward(x, context) { x, context in
            let spatial = x.rank == 4
            var hidden = x
            if spatial {
                let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
                if let groupNorm { hidden = try groupNorm(hidden) }
                hidden = try hidden.reshaped([b, c, h * w]).transposed(1, 2)           // [B, HW, C]
            }
            let (b, s) = (hidden.shape[0], hidden.shape[1])
            let source = context ?? hidden
            func split(_ t: Tensor) throws -> Tensor {                                  // [B, H, S, d]
                try t.reshaped([b, t.shape[1], heads, t.shape[2] / heads]).transposed(1, 2)
            }
            let attended = try scaledDotProductAttention(query: split(toQ(hidden)), key: split(toK(source)),
                                                         value: split(toV(source)), kernel: kernel)
            var out = try toOut(attended.transposed(1, 2).reshaped([b, s, -1]))         // [B, S, C]
            if spatial {
                out = try out.transposed(1, 2).reshaped(x.shape)                        // [B, C, H, W]
            }
            return residualConnection ? try out + x : out
        }
    }
}
