import NN
import Tensor

/// Diffusers' `FeedForward`: `net.0.proj` into the inner width, an activation, `net.2` back.
/// With GEGLU (Stable Diffusion's transformers) `net.0.proj` is twice as wide and one half
/// gates the other; with the tanh GELU (FLUX's "gelu-approximate") it is plain.
public final class FeedForward: Module, @unchecked Sendable {
    /// Diffusers' `activation_fn`.
    public enum Activation: Sendable {
        /// "geglu": value · GELU(gate), the exact GELU.
        case geglu
        /// "gelu-approximate": the tanh GELU.
        case geluTanh
    }

    let projection: Linear, output: Linear
    public let activation: Activation

    public init(dim: Int, innerDim: Int? = nil, activation: Activation = .geglu) {
        let inner = innerDim ?? dim * 4
        self.activation = activation
        projection = Linear(dim, activation == .geglu ? inner * 2 : inner)
        output = Linear(inner, dim)
        super.init()
        let net = child("net", Module())
        net.child("0", Module()).child("proj", projection)
        net.child("2", output)
    }

    /// The weights `init` declares, counted without building (keep the two in step).
    public static func parameterTally(dim: Int, innerDim: Int? = nil, activation: Activation = .geglu) -> ParameterTally {
        let inner = innerDim ?? ParameterTally.product(dim, 4)
        var t = ParameterTally()
        t.linear(dim, activation == .geglu ? ParameterTally.product(inner, 2) : inner)
        t.linear(inner, dim)
        return t
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            switch activation {
            case .geglu:
                let halves = try projection(x).chunked(2, axis: -1)
                return try output(halves[0].gated(by: halves[1], activation: .gelu))
            case .geluTanh:
                return try output(projection(x).gelu(.tanh))
            }
        }
    }
}
