import Foundation
import Tensor

/// What a call checks before it computes anything, and the finiteness checks between its
/// stages: a run that cannot succeed is refused up front, and one whose numbers break
/// (NaN or infinity from weights, options or overflow) stops at the stage where they first
/// appear instead of decoding a black image and reporting success.
extension DiffusionPipeline {
    /// Image sizes are multiples of the VAE's scale factor (whole latents) and of 8, which
    /// Diffusers' `check_inputs` asks of every Stable Diffusion pipeline. Latents that are not
    /// multiples of the UNet's downsampling run as Diffusers runs them (`forward_upsample_size`).
    static func sizeMultiple(vaeScaleFactor: Int) -> Int {
        var (a, b) = (vaeScaleFactor, 8)
        while b != 0 { (a, b) = (b, a % b) }
        return vaeScaleFactor / a * 8
    }

    /// The validated size (width, height) of a call and the checks every family shares: sizes
    /// positive multiples of `multiple` (`scaling` says why), steps, guidance, batch, prompts,
    /// the decoded batch within the memory available, finite initial latents, a schedule the
    /// scheduler can spread (`schedule`, by default `setTimesteps(steps)`).
    func validatedCall(_ options: GenerationOptions, defaultSize: Int, multiple unit: Int, scaling: String,
                       schedule: (() throws -> Void)? = nil) throws -> (Int, Int) {
        let width = options.width ?? defaultSize, height = options.height ?? defaultSize
        for (name, value) in [("width", width), ("height", height)] {
            guard value > 0, value <= Self.maximumImageSide, value % unit == 0 else {
                let what = unit == 1 ? "a positive number of pixels" : "a positive multiple of \(unit) pixels"
                throw PipelineError.invalidOption("the \(name) must be \(what) up to \(Self.maximumImageSide) for this pipeline "
                                                  + "(\(scaling)), not \(value)")
            }
        }
        guard options.guidanceRescale.isFinite else {
            throw PipelineError.invalidOption("guidance_rescale must be a finite number, not \(options.guidanceRescale)")
        }
        guard options.steps >= 1 else { throw PipelineError.invalidOption("the step count must be at least 1, not \(options.steps)") }
        guard options.guidanceScale.isFinite else {
            throw PipelineError.invalidOption("the guidance scale must be a finite number, not \(options.guidanceScale)")
        }
        guard options.imagesPerPrompt >= 1 else {
            throw PipelineError.invalidOption("the batch size must be at least 1, not \(options.imagesPerPrompt)")
        }
        if options.promptEmbeddings == nil && options.prompts.isEmpty {
            throw PipelineError.invalidOption("give a prompt (or prompt embeddings)")
        }
        let groups = options.promptCount
        let (images, overflow) = groups.multipliedReportingOverflow(by: options.imagesPerPrompt)
        guard !overflow, images <= Self.maximumBatch else {
            throw PipelineError.invalidOption(
                "\(groups) prompt(s) × \(options.imagesPerPrompt) images per prompt is more than the \(Self.maximumBatch) images one call can make")
        }
        if let negatives = options.negativePrompts, options.promptEmbeddings == nil, negatives.count != options.prompts.count {
            throw PipelineError.invalidOption("\(negatives.count) negative prompts for \(options.prompts.count) prompts")
        }
        // The decoded batch (f32, [B, 3, H, W]) is the least this call must hold at the end.
        let imageBytes = images * 3 * width * height * 4
        if let available = ProcessMemory.availableBytes(), imageBytes > available {
            throw PipelineError.invalidOption(
                "\(images) image(s) of \(width)×\(height) need \(formatBytes(imageBytes)) for the decoded batch alone, more than the \(formatBytes(available)) of memory available")
        }
        if let latents = options.latents {
            guard latents.dtype.isFloatingPoint else {
                throw PipelineError.invalidOption("the initial latents are \(latents.dtype); they must be floating-point noise")
            }
            try requireFinite(latents, "the initial latents given to the call")
        }
        // Steps the scheduler cannot spread fail here, before the text encoder runs.
        if let schedule { try schedule() } else { try scheduler.setTimesteps(options.steps) }
        return (width, height)
    }
}
