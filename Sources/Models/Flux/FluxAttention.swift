import NN
import Tensor

/// Diffusers' `FluxAttention` with `FluxAttnProcessor`: queries, keys and values of the image
/// stream (`to_q/k/v`) and, in the dual-stream blocks, of the text stream (`add_q/k/v_proj`),
/// each head RMS-normed (`norm_q/k`, `norm_added_q/k`), joined text first, rotated by the
/// positions, attended over the joint sequence without a mask, and split again: the image part
/// through `to_out.0`, the text part through `to_add_out`. The single-stream blocks' attention
/// is `pre_only`: one stream, no output projection.
public final class FluxAttention: Module, AttentionLayer, @unchecked Sendable {
    public let heads: Int
    public let normQ: RMSNorm, normK: RMSNorm
    public let toQ: Linear, toK: Linear, toV: Linear
    public let toOut: Linear?
    public let normAddedQ: RMSNorm?, normAddedK: RMSNorm?
    public let addQProj: Linear?, addKProj: Linear?, addVProj: Linear?, toAddOut: Linear?
    public var kernel: AttentionKernel = .auto

    /// - Parameters:
    ///   - addedDim: the text stream's width (`added_kv_proj_dim`), nil for one stream.
    ///   - preOnly: no `to_out` (the single-stream blocks project attention and MLP together).
    public init(dim: Int, heads: Int, headDim: Int, addedDim: Int? = nil, preOnly: Bool = false, eps: Float = 1e-6) {
        self.heads = heads
        let inner = heads * headDim
        normQ = RMSNorm(headDim, eps: eps)
        normK = RMSNorm(headDim, eps: eps)
        toQ = Linear(dim, inner)
        toK = Linear(dim, inner)
        toV = Linear(dim, inner)
        toOut = preOnly ? nil : Linear(inner, dim)
        normAddedQ = addedDim.map { _ in RMSNorm(headDim, eps: eps) }
        normAddedK = addedDim.map { _ in RMSNorm(headDim, eps: eps) }
        addQProj = addedDim.map { Linear($0, inner) }
        addKProj = addedDim.map { Linear($0, inner) }
        addVProj = addedDim.map { Linear($0, inner) }
        toAddOut = addedDim.map { _ in Linear(inner, dim) }
        super.init()
        // Diffusers' registration order (the state-dict order that shards and device maps follow).
        child("norm_q", normQ)
        child("norm_k", normK)
        child("to_q", toQ)
        child("to_k", toK)
        child("to_v", toV)
        if let toOut { child("to_out", ModuleList([toOut])) }
        if let normAddedQ, let normAddedK, let addQProj, let addKProj, let addVProj, let toAddOut {
            child("norm_added_q", normAddedQ)
            child("norm_added_k", normAddedK)
            child("add_q_proj", addQProj)
            child("add_k_proj", addKProj)
            child("add_v_proj", addVProj)
            child("to_add_out", toAddOut)
        }
    }

    public static func parameterTally(dim: Int, heads: Int, headDim: Int, addedDim: Int? = nil, preOnly: Bool = false) -> ParameterTally {
        let inner = ParameterTally.product(heads, headDim)
        var t = ParameterTally()
        t.add(shape: [headDim])
        t.add(shape: [headDim])
        for _ in 0..<3 { t.linear(dim, inner) }
        if !preOnly { t.linear(inner, dim) }
        if let addedDim {
            t.add(shape: [headDim])
            t.add(shape: [headDim])
            for _ in 0..<3 { t.linear(addedDim, inner) }
            t.linear(inner, dim)
        }
        return t
    }

    override public var className: String { "FluxAttention" }

    /// One stream (`pre_only`): x [B, S, D] → [B, S, H·d], no output projection.
    public func callAsFunction(_ x: Tensor, rotary: RotaryEmbedding) throws -> Tensor {
        try forward(x) { x in
            let (q, k, v) = try projections(x, toQ, toK, toV, normQ, normK)
            return try attend(q, k, v, rotary: rotary)
        }
    }

    /// Two streams: image x [B, N, D] and text context [B, L, D'] → (image [B, N, D], text [B, L, D]).
    public func callAsFunction(_ x: Tensor, context: Tensor, rotary: RotaryEmbedding) throws -> (image: Tensor, text: Tensor) {
        try forward(x, context) { x, context in
            guard let addQProj, let addKProj, let addVProj, let normAddedQ, let normAddedK, let toAddOut, let toOut else {
                throw ModuleError.invalidInput("this FluxAttention has one stream; it cannot attend a text context")
            }
            let (q, k, v) = try projections(x, toQ, toK, toV, normQ, normK)                      // [B, N, H, d]
            let (cq, ck, cv) = try projections(context, addQProj, addKProj, addVProj, normAddedQ, normAddedK)   // [B, L, H, d]
            let joint = try attend(Tensor.concat([cq, q], axis: 1), Tensor.concat([ck, k], axis: 1),
                                   Tensor.concat([cv, v], axis: 1), rotary: rotary)           // [B, L + N, H·d]
            let parts = try joint.split(sizes: [context.shape[1], x.shape[1]], axis: 1)
            return (try toOut(parts[1]), try toAddOut(parts[0]))
        }
    }

    /// Projections split into heads [B, S, H, d], queries and keys RMS-normed per head.
    private func projections(_ x: Tensor, _ q: Linear, _ k: Linear, _ v: Linear, _ nq: RMSNorm, _ nk: RMSNorm)
        throws -> (Tensor, Tensor, Tensor) {
        func heads(_ t: Tensor) throws -> Tensor { try t.reshaped([t.shape[0], t.shape[1], self.heads, t.shape[2] / self.heads]) }
        return (try nq(heads(q(x))), try nk(heads(k(x))), try heads(v(x)))
    }

    /// Rotates queries and keys [B, S, H, d], attends, and flattens the heads: [B, S, H·d].
    private func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, rotary: RotaryEmbedding) throws -> Tensor {
        let (b, s) = (q.shape[0], q.shape[1])
        let query = try rotary.apply(to: q).transposed(1, 2), key = try rotary.apply(to: k).transposed(1, 2)   // [B, H, S, d]
        let out = try scaledDotProductAttention(query: query, key: key, value: v.transposed(1, 2), kernel: kernel)
        return try out.transposed(1, 2).reshaped([b, s, -1]).to(q.dtype)
    }
}
