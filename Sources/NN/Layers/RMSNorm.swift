import Tensor

/// Root-mean-square normalisation over the last dimension, without mean subtraction or bias:
/// `y = w · x / √(mean(x²) + ε)`, as transformers' `T5LayerNorm` and Diffusers' `RMSNorm`
/// compute it. The statistics are taken in f32 whatever the input dtype; with an f16 or bf16
/// weight the normalised value is rounded to the weight's dtype before the multiply (so the
/// result is in that dtype), with an f32 weight the result is f32, and without a weight it is
/// rounded back to the input's dtype.
public final class RMSNorm: Module, @unchecked Sendable {
    public let eps: Float
    public let weight: Parameter?
    private let name: String

    /// - Parameter className: the class this norm mirrors (`T5LayerNorm`, `RMSNorm`), for
    ///   device maps and group offloading.
    public init(_ dimension: Int, eps: Float = 1e-6, affine: Bool = true, className: String = "RMSNorm") {
        self.eps = eps
        weight = affine ? Parameter(shape: [dimension]) : nil
        name = className
        super.init()
        if let weight { registerParameter("weight", weight) }
    }

    override public var className: String { name }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            guard let weight else { return try x.rmsNorm(weight: nil, eps: eps) }
            let w = try weight.tensor("RMSNorm.weight")
            let input = try x.to(w.device)
            switch w.dtype {
            case .f16, .bf16:
                // x·rsqrt(...) is f32 (an f32 statistic promotes a half input), then rounded to the weight's dtype.
                let normalized = input.dtype == w.dtype
                    ? try input.rmsNorm(weight: nil, eps: eps)
                    : try input.to(.f32).rmsNorm(weight: nil, eps: eps).to(w.dtype)
                return try normalized * w
            default:
                // One pass: (x·r)·w rounds as the two f32 multiplies do.
                return try input.to(.f32).rmsNorm(weight: w, eps: eps)
            }
        }
    }
}
