import Tensor

/// Group normalisation over [N, C, ...] (`nn.GroupNorm`).
public final class GroupNorm: Module, @unchecked Sendable {
    public let groups: Int, eps: Float
    public let weight: Parameter?, bias: Parameter?

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        self.groups = groups
        self.eps = eps
        weight = affine ? Parameter(shape: [channels]) : nil
        bias = affine ? Parameter(shape: [channels]) : nil
        super.init()
        if let weight, let bias { registerParameter("weight", weight); registerParameter("bias", bias) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let w = try weight?.tensor("GroupNorm.weight")
            return try x.to(w?.device ?? x.device).groupNorm(groups: groups, weight: w, bias: bias?.tensor("GroupNorm.bias"), eps: eps)
        }
    }
}

/// Layer normalisation over the last dimension (`nn.LayerNorm`).
public final class LayerNorm: Module, @unchecked Sendable {
    public let eps: Float
    public let weight: Parameter?, bias: Parameter?

    public init(_ dimension: Int, eps: Float = 1e-5, affine: Bool = true) {
        self.eps = eps
        weight = affine ? Parameter(shape: [dimension]) : nil
        bias = affine ? Parameter(shape: [dimension]) : nil
        super.init()
        if let weight, let bias { registerParameter("weight", weight); registerParameter("bias", bias) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let w = try weight?.tensor("LayerNorm.weight")
            return try x.to(w?.device ?? x.device).layerNorm(weight: w, bias: bias?.tensor("LayerNorm.bias"), eps: eps)
        }
    }
}
