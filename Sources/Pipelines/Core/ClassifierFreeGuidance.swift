import Tensor

/// Classifier-free guidance of a prediction for the doubled batch [2B, ...] (unconditional
/// half first): `u + g·(c − u)`; with `rescale` φ > 0 then Diffusers' `rescale_noise_cfg`
/// (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4): the
/// guided prediction times σ(c)/σ(guided), blended with φ — σ over every dimension but the
/// batch, with `torch.std`'s unbiased (N − 1) estimator.
func classifierFreeGuidance(_ prediction: Tensor, scale: Float, rescale: Float) throws -> Tensor {
    let halves = try prediction.chunked(2, axis: 0)                                    // uncond, text [B, ...]
    let guided = try halves[0] + (halves[1] - halves[0]) * scale
    guard rescale != 0 else { return guided }
    let batch = guided.shape[0]
    let text = try halves[1].contiguous().floats(), noise = try guided.contiguous().floats()
    let per = noise.count / max(batch, 1)
    let ratios = (0..<batch).map { b -> Float in
        Float(standardDeviation(text[(b * per)..<((b + 1) * per)]) / standardDeviation(noise[(b * per)..<((b + 1) * per)]))
    }
    let ratio = try Tensor(ratios, shape: [batch] + Array(repeating: 1, count: guided.rank - 1), device: guided.device)
    let rescaled = try guided * ratio                                                  // noise_cfg · (σ_text / σ_cfg)
    return try rescaled * rescale + guided * (1 - rescale)
}

/// The unbiased standard deviation, accumulated in double as PyTorch's CPU kernel does.
private func standardDeviation(_ values: ArraySlice<Float>) -> Double {
    guard values.count > 1 else { return .nan }
    let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
    let squares = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
    return (squares / Double(values.count - 1)).squareRoot()
}
