import Foundation

extension CPUBackend {
    public func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
        try CPUBackend.requireCompute(x, "softmax")
        let ax = try x.axis(axis)
        if ax != x.rank - 1 {
            // Move the axis last, compute there, and move it back.
            var order = Array(0..<x.rank); order.remove(at: ax); order.append(ax)
            var inverse = [Int](repeating: 0, count: x.rank)
            for (i, o) in order.enumerated() { inverse[o] = i }
            return try softmax(x.permuted(order).contiguous(), axis: -1).permuted(inverse).contiguous()
        }
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device)
        try rowwise(x, into: out) { src, dst, n in softmaxRow(src, dst, n) }
        return out
    }

    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try CPUBackend.requireCompute(x, "layerNorm")
        let n = x.shape.last ?? 1
        let (w, b) = try affineParameters(weight, bias, count: n, op: "layerNorm")
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device)
        // Missing affine parameters as ones and zeros (x·1 + 0 is x), read through pointers so
        // that the row loop vectorises.
        let scale = w ?? [Float](repeating: 1, count: n), shift = b ?? [Float](repeating: 0, count: n)
        try scale.withUnsafeBufferPointer { scale in
            try shift.withUnsafeBufferPointer { shift in
                guard let scale = scale.baseAddress, let shift = shift.baseAddress else { return }
                try rowwise(x, into: out) { src, dst, count in
                    let (mean, variance) = meanAndVariance(src, count)
                    let rstd = 1 / (variance + eps).squareRoot()
                    for i in 0..<count { dst[i] = (src[i] - mean) * rstd * scale[i] + shift[i] }
                }
            }
        }
        return out
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        try CPUBackend.requireCompute(x, "rmsNorm")
        let n = x.shape.last ?? 1
        let (w, _) = try affineParameters(weight, nil, count: n, op: "rmsNorm")
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device)
        try rowwise(x, into: out) { src, dst, count in
            var sum: Double = 0
            for i in 0..<count { sum += Double(src[i]) * Double(src[i]) }
            let r = Float(1 / (sum / Double(count) + Double(eps)).squareRoot())
            for i in 0..<count { dst[i] = src[i] * r * (w?[i] ?? 1) }
        }
        return out
    }

    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try CPUBackend.requireCompute(x, "groupNorm")
        guard x.rank >= 2 else { throw TensorError.shapeMismatch("groupNorm needs [N, C, ...], got \(x.shape)") }
        let channels = x.shape[1]
        guard groups > 0, channels % groups == 0 else {
            throw TensorError.invalidArgument("groupNorm: \(channels) channels do not split into \(groups) groups")
        }
        let (w, b) = try affineParameters(weight, bias, count: channels, op: "groupNorm")
        if x.rank == 4 && x.needsChannelsLastPath { return try groupNormChannelsLast(x, groups: groups, weight: w, bias: b, eps: eps) }
        let spatial = x.shape.dropFirst(2).reduce(1, *)
        let perGroup = channels / groups
        let input = try x.contiguous()
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device)
        let groupSize = perGroup * spatial
        let src = UnsafeRawPointer(input.data), dst = out.data, dtype = x.dtype
        let batches = x.shape[0]
        Parallel.forEach(batches * groups) { item in
            let group = item % groups
            let start = item * groupSize
            let scratch = F32Scratch(groupSize), result = F32Scratch(groupSize)
            defer { scratch.free(); result.free() }
            let values = f32Run(src + start * dtype.itemSize, stride: 1, dtype: dtype, count: groupSize, scratch: scratch.pointer)
            let (mean, variance) = meanAndVariance(values, groupSize)
            let rstd = 1 / (variance + eps).squareRoot()
            let target = dtype == .f32 ? (dst + start * 4).assumingMemoryBound(to: Float.self) : result.pointer
            for cl in 0..<perGroup {
                let channel = group * perGroup + cl
                let scale = rstd * (w?[channel] ?? 1)
                let shift = (b?[channel] ?? 0) - mean * scale
                let base = cl * spatial
                for i in 0..<spatial { target[base + i] = values[base + i] * scale + shift }
            }
            if dtype != .f32 { convertRun(UnsafeRawPointer(target), 1, .f32, dst + start * dtype.itemSize, dtype, groupSize) }
        }
        withExtendedLifetime((w, b, input)) {}
        return out
    }

    /// Weight and bias as f32 arrays, checked against the normalised size.
    func affineParameters(_ weight: Tensor?, _ bias: Tensor?, count: Int, op: String) throws -> ([Float]?, [Float]?) {
        if let weight, weight.count != count { throw TensorError.shapeMismatch("\(op) weight \(weight.shape) does not match \(count) features") }
        if let bias, bias.count != count { throw TensorError.shapeMismatch("\(op) bias \(bias.shape) does not match \(count) features") }
        return (try weight?.floats(), try bias?.floats())
    }

    /// Applies `body` to each row along the last axis, in f32.
    func rowwise(_ x: Tensor, into out: Tensor,
                 _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) throws {
        let n = x.shape.last ?? 1
        guard x.count > 0, n > 0 else { return }
        let input = try x.contiguous()
        let rows = x.count / n
        let src = UnsafeRawPointer(input.data), dst = out.data, dtype = x.dtype
        nonisolated(unsafe) let body = body
        Parallel.forEachChunk(rows, grain: max(1, 8192 / n)) { range in
            let scratch = F32Scratch(n), result = F32Scratch(n)
            defer { scratch.free(); result.free() }
            for row in range {
                let values = f32Run(src + row * n * dtype.itemSize, stride: 1, dtype: dtype, count: n, scratch: scratch.pointer)
                if dtype == .f32 {
                    body(values, (dst + row * n * 4).assumingMemoryBound(to: Float.self), n)
                } else {
                    body(values, result.pointer, n)
                    convertRun(UnsafeRawPointer(result.pointer), 1, .f32, dst + row * n * dtype.itemSize, dtype, n)
                }
            }
        }
        withExtendedLifetime(input) {}
    }
}

/// Mean and biased variance, accumulated in Double for stability over large groups, eight
/// lanes at a time (a single running sum cannot be vectorised; 7× faster at a group's size).
func meanAndVariance(_ p: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
    @inline(__always) func eight(_ i: Int) -> SIMD8<Double> {
        SIMD8(Double(p[i]), Double(p[i + 1]), Double(p[i + 2]), Double(p[i + 3]),
              Double(p[i + 4]), Double(p[i + 5]), Double(p[i + 6]), Double(p[i + 7]))
    }
    let whole = n / 8 * 8
    var lanes = SIMD8<Double>(repeating: 0)
    for i in stride(from: 0, to: whole, by: 8) { lanes += eight(i) }
    var sum = lanes.sum()
    for i in whole..<n { sum += Double(p[i]) }
    let mean = sum / Double(n)
    let centre = SIMD8<Double>(repeating: mean)
    lanes = SIMD8(repeating: 0)
    for i in stride(from: 0, to: whole, by: 8) { let d = eight(i) - centre; lanes += d * d }
    var squares = lanes.sum()
    for i in whole..<n { let d = Double(p[i]) - mean; squares += d * d }
    return (Float(mean), Float(squares / Double(n)))
}

/// Numerically stable softmax of one row.
func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var maximum = vectorMax(src, n)
    if maximum == -Float.infinity { maximum = 0 }  // fully masked row: zeros, then NaN as PyTorch
    for i in 0..<n { dst[i] = fastExp(src[i] - maximum) }
    let inverse = 1 / vectorSum(UnsafePointer(dst), n)
    for i in 0..<n { dst[i] *= inverse }
}
