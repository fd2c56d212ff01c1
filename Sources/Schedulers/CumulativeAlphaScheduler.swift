import Tensor

// What Diffusers' `DDIMScheduler` and `PNDMScheduler` share: integer timesteps indexing ᾱ
// directly, unit initial noise, an unscaled model input, ᾱ after the last timestep
// (`set_alpha_to_one`) and `add_noise` as √ᾱₜ·x₀ + √(1 − ᾱₜ)·ε.

/// A scheduler that steps on the training schedule's ᾱₜ (DDIM and PNDM).
protocol CumulativeAlphaScheduler: Scheduler {
    /// The training noise schedule (βₜ, ᾱₜ).
    var noiseSchedule: NoiseSchedule { get }
    /// ᾱ used after the last timestep.
    var finalAlphaCumprod: Float { get }
}

extension CumulativeAlphaScheduler {
    /// 1: these classes start from unit Gaussian noise.
    public var initNoiseSigma: Float { 1 }

    /// `sample` unchanged (these classes do not scale the model input).
    public mutating func scaleModelInput(_ sample: Tensor, timestep: Timestep) throws -> Tensor { sample }

    /// `√ᾱₜ·original + √(1 − ᾱₜ)·noise` per batch item.
    public func addNoise(original: Tensor, noise: Tensor, timesteps: [Timestep]) throws -> Tensor {
        try requireTimesteps(timesteps)
        let cumulative = noiseSchedule.alphasCumprod
        let coefficients: [(Float, Float)] = try timesteps.map { timestep in
            guard let t = timestep.integerValue, cumulative.indices.contains(t) else {
                throw SchedulerError.timestepOutOfRange(timestep, numTrainTimesteps: config.numTrainTimesteps)
            }
            return (cumulative[t].squareRoot(), (1 - cumulative[t]).squareRoot())
        }
        return try batchwise(original, noise, count: timesteps.count) { x, e, item in
            coefficients[item].0 * x + coefficients[item].1 * e
        }
    }
}

extension NoiseSchedule {
    /// ᾱ after the last timestep: 1 with `set_alpha_to_one`, else ᾱ₀.
    func finalAlphaCumprod(setAlphaToOne: Bool) -> Float {
        setAlphaToOne ? 1 : alphasCumprod[0]
    }

    /// The training timesteps T − 1, …, 0 (the schedule before `setTimesteps`).
    var trainingTimesteps: [Timestep] {
        (0..<alphasCumprod.count).reversed().map { .discrete($0) }
    }
}
