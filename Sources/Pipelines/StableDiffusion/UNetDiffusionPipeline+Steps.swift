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

    /// The image's latents, as Diffusers' image-to-image `prepare_latents`: encoded with the VAE
    /// in `encodeDType`, sampled from its distribution (the noise drawn from `generator` unless
    /// given), rounded through `latentDType`, scaled by `scaling_factor`, repeated to `batch`;
    /// f32 on the host. The encode's time goes to `timings.vaeEncodeSeconds`.
    func imageLatents(_ image: Tensor, encodeDType: DType, latentDType: DType, batch: Int, sampleNoise: Tensor?,
                      generator: inout TorchGenerator, timings: inout GenerationResult.Timings) throws -> Tensor {
        OpProfile.beginSection("vae_encode")
        defer { OpProfile.beginSection(nil) }
        let (distribution, encodeSeconds) = try timedPhase {
            try inPhase(of: vae) {
                encodeDType == dtype ? try vae.encode(image.to(dtype))
                    : try converting(vae, to: encodeDType) { try vae.encode(image.to(encodeDType)) }
            }
        }
        let sampleStart = Date()
        let noise = try sampleNoise ?? generator.randn(distribution.mean.shape)
        var latents = try distribution.sample(noise: noise.to(distribution.mean.dtype).to(distribution.mean.device))
            .to(latentDType).to(.f32).to(.cpu)
        latents = try latents.scaled(by: vae.config.scalingFactor)
        timings.vaeEncodeSeconds = encodeSeconds + Date().timeIntervalSince(sampleStart)
        return try repeatedToBatch(latents, batch)
    }

    /// [1 or batch, ...] latents as [batch, ...].
    func repeatedToBatch(_ latents: Tensor, _ batch: Int) throws -> Tensor {
        guard latents.shape[0] != batch else { return latents }
        return try Tensor.concat(Array(repeating: latents, count: batch / latents.shape[0]), axis: 0)
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
