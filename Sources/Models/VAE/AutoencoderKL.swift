import NN
import Tensor

/// Diffusers' `AutoencoderKL`: images [B, 3, H, W] in [-1, 1] ↔ latents [B, 4, H/8, W/8].
public final class AutoencoderKL: Module, @unchecked Sendable {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder, decoder: VAEDecoder
    let quantConv: Conv2d?, postQuantConv: Conv2d?
    /// Batches run one sample at a time (`enableSlicing`).
    public internal(set) var useSlicing = false
    /// Tiles for large images and latents (`enableTiling`); nil: off.
    public internal(set) var tiling: VAETiling?

    override public var className: String { "AutoencoderKL" }
    override public var noSplitModuleClasses: [String] { ["BasicTransformerBlock", "ResnetBlock2D"] }
    /// The encoder and decoder hold the repeated blocks one level down.
    override public var groupOffloadBlockModules: [String] { ["quant_conv", "post_quant_conv", "encoder", "decoder"] }

    public init(_ config: AutoencoderKLConfig) {
        self.config = config
        encoder = VAEEncoder(config)
        decoder = VAEDecoder(config)
        let latent = config.latentChannels
        quantConv = config.useQuantConv ? Conv2d(2 * latent, 2 * latent, kernelSize: 1) : nil
        postQuantConv = config.usePostQuantConv ? Conv2d(latent, latent, kernelSize: 1) : nil
        super.init()
        child("encoder", encoder)
        child("decoder", decoder)
        if let quantConv { child("quant_conv", quantConv) }
        if let postQuantConv { child("post_quant_conv", postQuantConv) }
    }

    /// The latent distribution of images [B, C, H, W] (H and W multiples of the downscale factor).
    public func encode(_ images: Tensor) throws -> DiagonalGaussianDistribution {
        try forward(images) { images in
            guard images.rank == 4, images.shape[1] == config.inChannels else {
                throw ModuleError.invalidInput("VAE encode expects [B, \(config.inChannels), H, W], got \(images.shape)")
            }
            return try DiagonalGaussianDistribution(sliced(images.to(executionDevice), encodeMoments))
        }
    }

    /// Images [B, C, 8h, 8w] from latents [B, latent, h, w] (already divided by the scaling factor).
    public func decode(_ latents: Tensor) throws -> Tensor {
        try forward(latents) { latents in
            guard latents.rank == 4, latents.shape[1] == config.latentChannels else {
                throw ModuleError.invalidInput("VAE decode expects [B, \(config.latentChannels), h, w], got \(latents.shape)")
            }
            return try sliced(latents.to(executionDevice), decodeSamples)
        }
    }
}

/// The encoder's output read as a Gaussian: mean and log-variance halves of the moments,
/// log-variance clamped to [-30, 20] as Diffusers does.
public struct DiagonalGaussianDistribution: @unchecked Sendable {
    public let mean: Tensor, logVariance: Tensor, standardDeviation: Tensor

    public init(_ moments: Tensor) throws {
        let halves = try moments.chunked(2, axis: 1)
        mean = try halves[0].contiguous()
        logVariance = try halves[1].clamped(to: -30...20)
        standardDeviation = try logVariance.scaled(by: 0.5).exp()
    }

    /// The most likely latent (the mean).
    public func mode() -> Tensor { mean }

    /// mean + std · noise, with `noise` [same shape] from the caller's generator.
    public func sample(noise: Tensor) throws -> Tensor {
        guard noise.shape == mean.shape else {
            throw ModuleError.invalidInput("latent noise \(noise.shape) does not match the latent shape \(mean.shape)")
        }
        return try mean + standardDeviation * noise
    }
}
