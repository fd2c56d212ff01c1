import Foundation
import Models
import Tensor

/// Given initial latents as f32, refused unless they have the run's `shape` (`what` names it).
func checkedInitialLatents(_ given: Tensor, shape: [Int], what: String = "") throws -> Tensor {
    guard given.shape == shape else {
        throw PipelineError.invalidOption("initial latents have shape \(given.shape); this run needs \(what)\(shape)")
    }
    return try given.to(.f32)
}

/// The initial noise, and image-to-image's input and encoding, shared by every family.
extension DiffusionPipeline {
    /// A call's initial noise of `shape`: the given `options.latents` (which must have that
    /// shape; `what` names it in the error) as f32, or drawn from `generator` as Diffusers'
    /// `randn_tensor` draws it.
    func initialNoise(_ options: GenerationOptions, shape: [Int], what: String = "", generator: inout TorchGenerator) throws -> Tensor {
        guard let given = options.latents else { return try generator.randn(shape) }
        return try checkedInitialLatents(given, shape: shape, what: what)
    }

    /// What every image-to-image call checks first: `strength` in [0, 1], and an input of
    /// pixels [B, 3, H, W] or — where the family takes them (`latentChannels` non-nil) — latents
    /// [B, latentChannels, h, w]. Returns the options sized to the input (a latent counts
    /// `vaeScaleFactor` pixels a side) and whether it is latents.
    func imageToImageInput(_ options: GenerationOptions, image: Tensor, strength: Float, latentChannels: Int?,
                           vaeScaleFactor: Int) throws -> (sized: GenerationOptions, givenLatents: Bool) {
        guard strength.isFinite, (0...1).contains(strength) else {
            throw PipelineError.invalidOption("strength must be between 0 and 1, not \(strength)")
        }
        guard image.rank == 4, image.shape[1] == 3 || (latentChannels != nil && image.shape[1] == latentChannels) else {
            throw PipelineError.invalidOption("the init image must be [B, 3, H, W]"
                                              + (latentChannels.map { " (or latents [B, \($0), h, w])" } ?? "") + ", got \(image.shape)")
        }
        let givenLatents = latentChannels != nil && image.shape[1] == latentChannels && latentChannels != 3
        let factor = givenLatents ? vaeScaleFactor : 1
        var sized = options
        sized.width = image.shape[3] * factor
        sized.height = image.shape[2] * factor
        return (sized, givenLatents)
    }

    /// The image's latents, as Diffusers' image-to-image `prepare_latents`: encoded with the VAE
    /// in `encodeDType`, sampled from its distribution (the noise drawn from `generator` unless
    /// given), rounded through `latentDType`, less the VAE's `shift_factor` (FLUX's) and scaled
    /// by its `scaling_factor`, repeated to `batch`; f32 on the host. The encode's time goes to
    /// `timings.vaeEncodeSeconds`.
    func imageLatents(_ image: Tensor, encodeDType: DType, latentDType: DType, batch: Int, sampleNoise: Tensor?,
                      generator: inout TorchGenerator, timings: inout GenerationResult.Timings) throws -> Tensor {
        let vae = try autoencoder()
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
        if let shift = vae.config.shiftFactor { latents = try latents - shift }
        latents = try latents.scaled(by: vae.config.scalingFactor)
        timings.vaeEncodeSeconds = encodeSeconds + Date().timeIntervalSince(sampleStart)
        return try repeatedToBatch(latents, batch)
    }

    /// [1 or batch, ...] latents as [batch, ...].
    func repeatedToBatch(_ latents: Tensor, _ batch: Int) throws -> Tensor {
        guard latents.shape[0] != batch else { return latents }
        return try Tensor.concat(Array(repeating: latents, count: batch / latents.shape[0]), axis: 0)
    }
}
