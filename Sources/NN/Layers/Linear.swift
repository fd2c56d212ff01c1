import Tensor

// Leaf layers move their input to their weight's device: wherever hooks placed the weights is
// where the layer computes.

/// `y = x Wᵀ + b` with `weight` [out, in] (PyTorch's `nn.Linear`).
public final class Linear: Module, @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let w = Parameter(shape: [outFeatures, inFeatures])
        weight = w
        self.bias = bias ? Parameter(shape: [outFeatures]) : nil
        super.init()
        registerParameter("weight", w)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let w = try weight.tensor("Linear.weight")
            return try x.to(w.device).linear(weight: w, bias: bias?.tensor("Linear.bias"))
        }
    }
}

/// 2-D convolution, NCHW (PyTorch's `nn.Conv2d` with dilation 1 and groups 1).
public final class Conv2d: Module, @unchecked Sendable {
    public let stride: Int, padding: ConvPadding
    public let weight: Parameter
    public let bias: Parameter?
    /// The layout the convolution computes in: with `.channelsLast` a contiguous input is
    /// converted once, and the output (like every channels-last output) stays channels-last.
    public var memoryFormat: MemoryFormat = .contiguous

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.init(inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: ConvPadding(padding), bias: bias)
    }

    /// With padding per side (Diffusers' VAE downsampler pads only bottom and right).
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int, padding: ConvPadding, bias: Bool = true) {
        self.stride = stride
        self.padding = padding
        let w = Parameter(shape: [outChannels, inChannels, kernelSize, kernelSize])
        weight = w
        self.bias = bias ? Parameter(shape: [outChannels]) : nil
        super.init()
        registerParameter("weight", w)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try forward(x) { x in
            let w = try weight.tensor("Conv2d.weight")
            return try x.to(w.device).contiguous(memoryFormat == .channelsLast && x.rank == 4 ? .channelsLast : .contiguous)
                .conv2d(weight: w, bias: bias?.tensor("Conv2d.bias"), stride: stride, padding: padding)
        }
    }
}

/// Rows of a table picked by integer ids (`nn.Embedding`).
public final class Embedding: Module, @unchecked Sendable {
    public let weight: Parameter

    public init(_ count: Int, _ dimension: Int) {
        let w = Parameter(shape: [count, dimension])
        weight = w
        super.init()
        registerParameter("weight", w)
    }

    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        try forward(ids) { ids in
            let w = try weight.tensor("Embedding.weight")
            return try Tensor.embedding(ids.to(w.device), weight: w)
        }
    }
}
