import NN
import Tensor

/// `LN(x)·(1 + scale) + shift` with one scale and shift per sample, broadcast over the
/// sequence: x [B, S, D], shift and scale [B, D]. The adaptive layer norms' modulation, rounded
/// op by op as PyTorch rounds it in a half-precision run.
func modulated(_ normalized: Tensor, shift: Tensor, scale: Tensor) throws -> Tensor {
    try normalized * (scale + 1).unsqueezed(1) + shift.unsqueezed(1)
}

/// `gate · x` with one gate per sample: gate [B, D], x [B, S, D].
func gated(_ x: Tensor, by gate: Tensor) throws -> Tensor { try gate.unsqueezed(1) * x }

/// The modulation of the adaptive norms: `linear(SiLU(emb))` chunked into `parts` [B, D] pieces.
private func modulation(_ linear: Linear, _ embedding: Tensor, parts: Int) throws -> [Tensor] {
    try linear(embedding.silu()).chunked(parts, axis: 1)
}

/// Diffusers' `AdaLayerNormZero` (the DiT/FLUX dual-stream form): `linear` [6·D, E] on
/// `SiLU(emb)` gives shift, scale and gate for the attention and for the feed-forward, in that
/// order; the input is layer-normed (no affine, ε 1e-6) and modulated by the first two.
public final class AdaLayerNormZero: Module, @unchecked Sendable {
    public let linear: Linear
    let norm: LayerNorm

    public init(_ dim: Int, embeddingDim: Int? = nil) {
        linear = Linear(embeddingDim ?? dim, 6 * dim)
        norm = LayerNorm(dim, eps: 1e-6, affine: false)
        super.init()
        child("linear", linear)
        child("norm", norm)
    }

    public static func parameterTally(_ dim: Int, embeddingDim: Int? = nil) -> ParameterTally {
        var t = ParameterTally()
        t.linear(embeddingDim ?? dim, ParameterTally.product(6, dim))
        return t
    }

    override public var className: String { "AdaLayerNormZero" }

    /// What the norm returns besides the modulated input: the attention's gate and the
    /// feed-forward's shift, scale and gate, each [B, D].
    public struct Output {
        public var normalized: Tensor
        public var gateMSA: Tensor, shiftMLP: Tensor, scaleMLP: Tensor, gateMLP: Tensor
    }

    /// x [B, S, D], emb [B, E].
    public func callAsFunction(_ x: Tensor, embedding: Tensor) throws -> Output {
        try forward(x, embedding) { x, embedding in
            let m = try modulation(linear, embedding, parts: 6)
            return Output(normalized: try modulated(norm(x), shift: m[0], scale: m[1]),
                          gateMSA: m[2], shiftMLP: m[3], scaleMLP: m[4], gateMLP: m[5])
        }
    }
}

/// Diffusers' `AdaLayerNormZeroSingle` (FLUX's single-stream blocks): `linear` [3·D, D] gives
/// shift, scale and gate.
public final class AdaLayerNormZeroSingle: Module, @unchecked Sendable {
    public let linear: Linear
    let norm: LayerNorm

    public init(_ dim: Int) {
        linear = Linear(dim, 3 * dim)
        norm = LayerNorm(dim, eps: 1e-6, affine: false)
        super.init()
        child("linear", linear)
        child("norm", norm)
    }

    public static func parameterTally(_ dim: Int) -> ParameterTally {
        var t = ParameterTally()
        t.linear(dim, ParameterTally.product(3, dim))
        return t
    }

    override public var className: String { "AdaLayerNormZeroSingle" }

    /// The modulated input [B, S, D] and the gate [B, D].
    public func callAsFunction(_ x: Tensor, embedding: Tensor) throws -> (normalized: Tensor, gate: Tensor) {
        try forward(x, embedding) { x, embedding in
            let m = try modulation(linear, embedding, parts: 3)
            return (try modulated(norm(x), shift: m[0], scale: m[1]), m[2])
        }
    }
}

/// Diffusers' `AdaLayerNormContinuous` (FLUX's `norm_out`): `linear` [2·D, E] gives **scale,
/// then shift** (the reverse of the other adaptive norms; Diffusers' converter swaps BFL's
/// order when it reads their files). The conditioning's SiLU is cast to the input's dtype
/// before the linear.
public final class AdaLayerNormContinuous: Module, @unchecked Sendable {
    public let linear: Linear
    let norm: LayerNorm

    public init(_ dim: Int, conditioningDim: Int, eps: Float = 1e-6) {
        linear = Linear(conditioningDim, 2 * dim)
        norm = LayerNorm(dim, eps: eps, affine: false)
        super.init()
        child("linear", linear)
        child("norm", norm)
    }

    public static func parameterTally(_ dim: Int, conditioningDim: Int) -> ParameterTally {
        var t = ParameterTally()
        t.linear(conditioningDim, ParameterTally.product(2, dim))
        return t
    }

    override public var className: String { "AdaLayerNormContinuous" }

    /// x [B, S, D], conditioning [B, E].
    public func callAsFunction(_ x: Tensor, conditioning: Tensor) throws -> Tensor {
        try forward(x, conditioning) { x, conditioning in
            let m = try linear(conditioning.silu().to(x.dtype)).chunked(2, axis: 1)
            return try modulated(norm(x), shift: m[1], scale: m[0])
        }
    }
}
