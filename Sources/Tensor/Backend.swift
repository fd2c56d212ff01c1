/// Pointwise functions of one operand.
public enum UnaryOp: String, Sendable, CaseIterable {
    case silu, gelu, geluTanh, quickGelu, sigmoid, tanh, exp, neg, relu, sqrt, rsqrt, abs, square
}

/// Pointwise functions of two broadcast operands.
public enum BinaryOp: String, Sendable, CaseIterable {
    case add, sub, mul, div, maximum, minimum
}

/// How `scaledDotProductAttention` computes.
public enum AttentionKernel: Sendable, Equatable {
    /// Materialises the whole [B, H, Sq, Sk] score matrix (simple, memory-hungry).
    case reference
    /// Tiled with an online softmax: at most one tile of scores per thread.
    case memoryEfficient
}

/// The compute behind tensor operations. Each device answers one backend; the CPU backend
/// is the reference implementation (and the one `accel` stand-in devices compute with).
/// Operands must be on one device; results are placed there.
public protocol Backend: Sendable {
    func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor
    /// `x * scale + shift`.
    func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor
}
