import Foundation
import Models
import Schedulers
import Tensor

/// The steps the SD family's text-to-image and image-to-image calls share (1.x/2.x and XL).
extension UNetDiffusionPipeline {
    /// The denoising loop with classifier-free guidance: the UNet on the latents (doubled when
    /// `guided`, `context` and `added` then holding the negative half first), then
    /// `uncond + g·(text − uncond)`, rescaled with `rescale` φ > 0.
    func guidedDenoise(_ initial: Tensor, timesteps: [Timestep], context: Tensor, added: UNet2DConditionModel.AddedConditions?,
                       guided: Bool, scale: Float, rescale: Float, timings: inout GenerationResult.Timings,
                       progress: ProgressHandler?) throws -> Tensor {
        try denoisingLoop(initial, timesteps: timesteps, timings: &timings, progress: progress) { latents, t in
            let doubled = guided ? try Tensor.concat([latents, latents], axis: 0) : latents
            let input = try scheduler.scaleModelInput(doubled, timestep: t).to(dtype)
            let prediction = try predictNoise(input, timestep: try Timestep.tensor([t]), encoderHiddenStates: context, addedConditions: added)
                .to(.f32).to(latents.device)
            guard guided else { return prediction }
            return try classifierFreeGuidance(prediction, scale: scale, rescale: rescale)
        }
    }

    /// Diffusers' `get_timesteps` for a `strength`: the schedule less its first (1 − strength),
    /// the scheduler's begin index set to match. Call after `setTimesteps(steps)`.
    func strengthTimesteps(steps: Int, strength: Float) -> [Timestep] {
        let initSteps = min(Int(Float(steps) * strength), steps)
        let startIndex = max(steps - initSteps, 0) * scheduler.order
        scheduler.setBeginIndex(startIndex)
        return Array(scheduler.timesteps.dropFirst(startIndex))
    }

    /// `scheduler.add_noise(latents, noise, timestep)`, the noise drawn from `generator` unless given.
    func noised(_ latents: Tensor, noise: Tensor?, at timestep: Timestep, generator: inout TorchGenerator) throws -> Tensor {
        let added = try noise ?? generator.randn(latents.shape)
        guard added.shape == latents.shape else {
            throw PipelineError.invalidOption("noise \(added.shape) does not match the latents \(latents.shape)")
        }
        return try scheduler.addNoise(original: latents, noise: added.to(.f32), timestep: timestep)
    }

    /// The discrete timestep `fraction` of the way through training time, as Diffusers'
    /// `denoising_end` / `denoising_start` compute it: round(N − fraction·N), ties to even as
    /// Python's `round`.
    func timestepCutoff(_ fraction: Double) -> Float {
        let train = Double(scheduler.config.numTrainTimesteps)
        return Float((train - fraction * train).rounded(.toNearestOrEven))
    }
}
