import Foundation

// The operations models call, in Swift's idiom. Each forwards to the device's backend.

extension Tensor {
    /// The device's backend; while a graph capture is recorded or replayed on this thread,
    /// wrapped so that the operation is seen by the capture, and while an `OpProfile` records,
    /// so that it is timed.
    var backend: any Backend {
        var backend = device.backend
        if MemoryRehearsal.skipsWork, let rehearsal = MemoryRehearsal.current {
            backend = InterceptingBackend(base: backend) { name, inputs, _, call in try rehearsal.operation(name, inputs: inputs, call) }
        }
        if let capture = CaptureSession.current {
            backend = InterceptingBackend(base: backend) { try capture.operation($0, inputs: $1, inPlaceSafe: $2, $3) }
        }
        if let profile = OpProfile.current {
            backend = InterceptingBackend(base: backend) { name, _, _, call in
                try profile.measure(OpClass(operation: name), operation: name, call)
            }
        }
        return backend
    }

    public func silu() throws -> Tensor { try backend.unary(.silu, self) }
    public func sigmoid() throws -> Tensor { try backend.unary(.sigmoid, self) }
    public func tanh() throws -> Tensor { try backend.unary(.tanh, self) }
    public func exp() throws -> Tensor { try backend.unary(.exp, self) }
    public func relu() throws -> Tensor { try backend.unary(.relu, self) }
    public func sqrt() throws -> Tensor { try backend.unary(.sqrt, self) }
    /// GELU; `.exact` uses erf as `torch.nn.functional.gelu`, `.tanh` its tanh approximation.
    public func gelu(_ approximation: GELUApproximation = .exact) throws -> Tensor {
        try backend.unary(approximation == .exact ? .gelu : .geluTanh, self)
    }
    /// `x * sigmoid(1.702 x)`, CLIP's activation.
    public func quickGelu() throws -> Tensor { try backend.unary(.quickGelu, self) }
    public func applying(_ op: UnaryOp) throws -> Tensor { try backend.unary(op, self) }
    /// `self * activation(gate)` in one pass (GEGLU: value · GELU(gate)); the same numbers as
    /// the two operations.
    public func gated(by gate: Tensor, activation: UnaryOp) throws -> Tensor {
        try backend.gated(self, by: gate, activation: activation)
    }

    public func scaled(by scale: Float, adding shift: Float = 0) throws -> Tensor {
        try backend.affine(self, scale: scale, shift: shift)
    }

    /// Each element limited to `range` (NaN stays NaN).
    public func clamped(to range: ClosedRange<Float>) throws -> Tensor {
        try backend.clamp(self, lower: range.lowerBound, upper: range.upperBound)
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.backend.binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.backend.binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.backend.binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.backend.binary(.div, a, b) }
    public static func * (a: Tensor, b: Float) throws -> Tensor { try a.backend.affine(a, scale: b, shift: 0) }
    public static func + (a: Tensor, b: Float) throws -> Tensor { try a.backend.affine(a, scale: 1, shift: b) }
    public static func - (a: Tensor, b: Float) throws -> Tensor { try a.backend.affine(a, scale: 1, shift: -b) }
    public static func / (a: Tensor, b: Float) throws -> Tensor { try a.backend.affine(a, scale: 1 / b, shift: 0) }

    public func softmax(axis: Int = -1) throws -> Tensor { try backend.softmax(self, axis: axis) }

    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
        try backend.groupNorm(self, groups: groups, weight: weight, bias: bias, eps: eps)
    }
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
        try backend.layerNorm(self, weight: weight, bias: bias, eps: eps)
    }
    public func rmsNorm(weight: Tensor?, eps: Float = 1e-6) throws -> Tensor {
        try backend.rmsNorm(self, weight: weight, eps: eps)
    }

    /// Batched matrix product with broadcasting: [..., M, K] @ [..., K, N].
    public func matmul(_ other: Tensor) throws -> Tensor { try backend.matmul(self, other) }
    /// `self @ weightᵀ + bias`, weight [out, in] as PyTorch's `nn.Linear` stores it.
    public func linear(weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try backend.linear(self, weight: weight, bias: bias)
    }
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        try backend.conv2d(self, weight: weight, bias: bias, stride: (stride, stride), padding: ConvPadding(padding))
    }
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: ConvPadding) throws -> Tensor {
        try backend.conv2d(self, weight: weight, bias: bias, stride: (stride, stride), padding: padding)
    }
    public func upsampleNearest2x() throws -> Tensor {
        guard rank == 4 else { throw TensorError.shapeMismatch("upsampleNearest2x needs [N, C, H, W], got \(shape)") }
        return try backend.upsampleNearest(self, height: 2 * shape[2], width: 2 * shape[3])
    }

    /// Nearest-neighbour resize of [N, C, H, W] to `height`×`width`, as
    /// `F.interpolate(x, size=(height, width), mode="nearest")`: output row i reads input row
    /// `min(⌊i·(H/height)⌋, H − 1)` in float32, as PyTorch computes it (2× and 1× exactly).
    public func upsampleNearest(height: Int, width: Int) throws -> Tensor {
        try backend.upsampleNearest(self, height: height, width: width)
    }

    /// Splits into `parts` equal pieces along `axis` (views), as `torch.chunk` for divisible sizes.
    public func chunked(_ parts: Int, axis: Int) throws -> [Tensor] {
        let ax = try self.axis(axis)
        guard parts > 0, shape[ax] % parts == 0 else {
            throw TensorError.invalidArgument("cannot chunk axis \(axis) of size \(shape[ax]) into \(parts) equal parts")
        }
        let size = shape[ax] / parts
        return try (0..<parts).map { try narrowed(axis: ax, start: $0 * size, length: size) }
    }

    /// Splits into pieces of the given sizes along `axis` (views), as `torch.split`.
    public func split(sizes: [Int], axis: Int) throws -> [Tensor] {
        let ax = try self.axis(axis)
        guard sizes.reduce(0, +) == shape[ax], sizes.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument("split sizes \(sizes) do not add up to \(shape[ax]) along axis \(axis)")
        }
        var start = 0
        return try sizes.map { size in
            defer { start += size }
            return try narrowed(axis: ax, start: start, length: size)
        }
    }

    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidArgument("concat needs at least one tensor") }
        return try first.backend.concat(tensors, axis: axis)
    }

    /// Rows of `weight` picked by integer `ids`: [ids..., width].
    public static func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        try weight.backend.embedding(ids, weight: weight)
    }
}

public enum GELUApproximation: Sendable { case exact, tanh }

/// softmax(q·kᵀ·scale + mask)·v for [B, H, S, D] operands (`F.scaled_dot_product_attention`).
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil,
                                      scale: Float? = nil, isCausal: Bool = false,
                                      kernel: AttentionKernel = .auto) throws -> Tensor {
    try query.backend.scaledDotProductAttention(query: query, key: key, value: value, mask: mask,
                                                 scale: scale, isCausal: isCausal, kernel: kernel)
}

/// Sinusoidal timestep embeddings as Diffusers' `get_timestep_embedding`: [N] → [N, dim].
public func timestepEmbedding(_ timesteps: Tensor, dimension: Int, flipSinToCos: Bool = false,
                              downscaleFreqShift: Float = 1, scale: Float = 1, maxPeriod: Float = 10000) throws -> Tensor {
    guard timesteps.rank == 1 else { throw TensorError.shapeMismatch("timesteps must be 1-D, got \(timesteps.shape)") }
    guard dimension > 1 else { throw TensorError.invalidArgument("timestep embedding dimension must be at least 2, got \(dimension)") }
    let half = dimension / 2
    guard Float(half) != downscaleFreqShift else {
        throw TensorError.invalidArgument("timestep embedding: half dimension \(half) equals the frequency shift")
    }
    let logPeriod = -Float(Foundation.log(Double(maxPeriod)))
    let frequencies = (0..<half).map { Foundation.exp(logPeriod * Float($0) / (Float(half) - downscaleFreqShift)) }
    let times = try timesteps.floats()
    var values = [Float](repeating: 0, count: times.count * dimension)
    for (n, t) in times.enumerated() {
        for i in 0..<half {
            let angle = scale * (t * frequencies[i])
            let (first, second) = flipSinToCos ? (Foundation.cos(angle), Foundation.sin(angle)) : (Foundation.sin(angle), Foundation.cos(angle))
            values[n * dimension + i] = first
            values[n * dimension + half + i] = second
        }
    }
    return try Tensor(values, shape: [times.count, dimension], device: timesteps.device)
}
