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
    /// `memoryEfficient`, except that a score matrix no bigger than one tile (a text encoder's
    /// 77 tokens) is computed whole, as `reference`: tiling saves nothing there and its
    /// per-tile set-up costs more than the products. The default.
    case auto
    /// The reference computation this many heads at a time (Diffusers' `SlicedAttnProcessor`):
    /// the scores of `n` heads of one sample exist at once.
    case sliced(Int)

    /// Whether it holds whole score matrices [Sq, Sk] (of every head, or of a slice of them).
    public var holdsScoreMatrices: Bool {
        switch self {
        case .reference, .sliced: return true
        case .memoryEfficient, .auto: return false
        }
    }

    /// Its name in operation signatures and profiles: `reference`, `memoryEfficient`, `auto`, `slicedN`.
    public var name: String {
        switch self {
        case .reference: return "reference"
        case .memoryEfficient: return "memoryEfficient"
        case .auto: return "auto"
        case .sliced(let n): return "sliced\(n)"
        }
    }
}

/// The compute behind tensor operations. Each device answers one backend; the CPU backend
/// is the reference implementation (and the one `accel` stand-in devices compute with).
/// Operands must be on one device; results are placed there.
public protocol Backend: Sendable {
    func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor
    /// `x * activation(gate)` in one pass (GEGLU's value · GELU(gate)), broadcast as `binary`;
    /// the activation is rounded to the gate's dtype first, as the two separate ops would.
    func gated(_ x: Tensor, by gate: Tensor, activation: UnaryOp) throws -> Tensor
    /// `x * scale + shift`.
    func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor
    /// Each element limited to `lower...upper` (NaN stays NaN, as `torch.clamp`).
    func clamp(_ x: Tensor, lower: Float, upper: Float) throws -> Tensor
    func softmax(_ x: Tensor, axis: Int) throws -> Tensor
    func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor
    func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor
    func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor
    /// Batched matrix product with broadcasting over leading dims: [..., M, K] @ [..., K, N].
    func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor
    /// `x @ weightᵀ + bias` with weight [out, in].
    func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: ConvPadding) throws -> Tensor
    func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor?,
                                   scale: Float?, isCausal: Bool, kernel: AttentionKernel) throws -> Tensor
    func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor
    /// Nearest-neighbour resize of [N, C, H, W] to `height`×`width`, as `F.interpolate(mode="nearest")`.
    func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor
    func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor
}

/// Zero padding around a convolution's input, per side (Diffusers' VAE downsampler pads only
/// bottom and right).
public struct ConvPadding: Sendable, Equatable, CustomStringConvertible {
    public var top: Int, left: Int, bottom: Int, right: Int

    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }

    /// The same padding on every side.
    public init(_ all: Int) { self.init(top: all, left: all, bottom: all, right: all) }

    public var description: String { "(top \(top), left \(left), bottom \(bottom), right \(right))" }
}
