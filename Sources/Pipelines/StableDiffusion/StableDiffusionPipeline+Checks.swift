import Tensor

/// What a Stable Diffusion call checks before it computes anything (`DiffusionPipeline.validatedCall`).
extension StableDiffusionPipeline {
    /// Image sizes are multiples of this many pixels: the VAE's scale factor times the UNet's
    /// downsampling (2 per down block after the first), since the UNet halves the latents
    /// that many times and doubles them back; and of 8, which Diffusers' `check_inputs` asks of
    /// every Stable Diffusion pipeline (64 for SD 1.x/2.x, 16 for the demo pipeline).
    public var sizeMultiple: Int { Self.sizeMultiple(vaeScaleFactor: vaeScaleFactor, unetDownsampling: unet.config.downsamplingFactor) }

    /// The size when the options give none: the UNet's sample size in pixels.
    public var defaultImageSize: Int { unet.config.sampleSize * vaeScaleFactor }

    /// The validated size (width, height) of a call, after every option check that needs
    /// no computation; throws `PipelineError.invalidOption` naming the option and the rule.
    func resolvedSize(_ options: GenerationOptions) throws -> (Int, Int) {
        try options.refuseUnsupported([.guidanceRescale], pipeline: Self.layout.className)
        return try validatedCall(options, defaultSize: defaultImageSize, multiple: sizeMultiple,
                                 scaling: "its VAE scales by \(vaeScaleFactor), its UNet by \(unet.config.downsamplingFactor)")
    }
}
