import Tensor

// Scheduler arithmetic runs on float32 host copies of the (small) latent tensors, one closure
// per Diffusers expression, so that each float operation rounds exactly where PyTorch's
// elementwise kernels round. Results are created on the device of the sample.

/// Float32 values of a tensor in row-major order.
@inline(__always)
func hostValues(_ tensor: Tensor) throws -> [Float] { try tensor.floats() }

/// A tensor of `values` with `like`'s shape and device.
func makeTensor(_ values: [Float], like: Tensor, dtype: DType? = nil) throws -> Tensor {
    try Tensor(values, shape: like.shape, dtype: dtype ?? like.dtype, device: like.device)
}

/// Throws unless `a` and `b` have the same shape.
func requireSameShape(_ a: Tensor, _ b: Tensor, _ names: (String, String)) throws {
    guard a.shape == b.shape else {
        throw SchedulerError.shapeMismatch("\(names.0) has shape \(a.shape) but \(names.1) has shape \(b.shape)")
    }
}

/// The noise of a stochastic step: `noise`'s values (its shape must be `modelOutput`'s), or
/// one `randn` of `modelOutput`'s size from `generator` when none is passed.
func stepNoise(_ noise: Tensor?, like modelOutput: Tensor, generator: inout TorchGenerator) throws -> [Float] {
    guard let noise else { return generator.normalFloats(count: modelOutput.count) }
    try requireSameShape(noise, modelOutput, ("noise", "modelOutput"))
    return try hostValues(noise)
}

func elementwise(_ a: [Float], _ f: (Float) -> Float) -> [Float] {
    a.map(f)
}

// The multi-operand forms combine the common prefix; callers check shapes first (a shorter
// operand is a bug that must not read out of bounds).

func elementwise(_ a: [Float], _ b: [Float], _ f: (Float, Float) -> Float) -> [Float] {
    let n = min(a.count, b.count)
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<n { out[i] = f(pa[i], pb[i]) }
            }
        }
        initialized = n
    }
}

func elementwise(_ a: [Float], _ b: [Float], _ c: [Float], _ f: (Float, Float, Float) -> Float) -> [Float] {
    let n = min(a.count, b.count, c.count)
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeBufferPointer { pc in
                    for i in 0..<n { out[i] = f(pa[i], pb[i], pc[i]) }
                }
            }
        }
        initialized = n
    }
}

func elementwise(_ a: [Float], _ b: [Float], _ c: [Float], _ d: [Float],
                 _ f: (Float, Float, Float, Float) -> Float) -> [Float] {
    let n = min(a.count, b.count, c.count, d.count)
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
        for i in 0..<n { out[i] = f(a[i], b[i], c[i], d[i]) }
        initialized = n
    }
}

/// Throws unless the stored history of a multistep scheduler fits the new model output.
func requireHistoryFits(_ history: [[Float]?], count: Int, scheduler: String) throws {
    if let stored = history.compactMap({ $0 }).first(where: { $0.count != count }) {
        throw SchedulerError.shapeMismatch(
            "\(scheduler): the model output has \(count) values but earlier steps of this run had \(stored.count); call reset() or setTimesteps to start a new run")
    }
}

/// Per-batch-item coefficients broadcast over the remaining dimensions, as Diffusers'
/// `add_noise` does with a `[B]` timestep tensor: `combine(original, noise, itemIndex)`.
func batchwise(_ original: Tensor, _ noise: Tensor, count: Int,
               _ combine: (Float, Float, Int) -> Float) throws -> Tensor {
    try requireSameShape(original, noise, ("original", "noise"))
    let batch = original.rank == 0 ? 1 : original.shape[0]
    guard count == 1 || count == batch else {
        throw SchedulerError.shapeMismatch("\(count) timesteps for a batch of \(batch)")
    }
    let a = try hostValues(original), b = try hostValues(noise)
    let perItem = batch == 0 ? 0 : a.count / batch
    var out = [Float](repeating: 0, count: a.count)
    for i in 0..<a.count {
        let item = count == 1 || perItem == 0 ? 0 : i / perItem
        out[i] = combine(a[i], b[i], item)
    }
    return try makeTensor(out, like: original)
}

/// `timesteps` must be non-empty.
func requireTimesteps(_ timesteps: [Timestep]) throws {
    guard !timesteps.isEmpty else { throw SchedulerError.shapeMismatch("addNoise needs at least one timestep") }
}
