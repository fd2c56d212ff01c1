import ArgumentParser
import Diffusers
import Foundation

/// `diffuse generate`'s family-specific flags (DESIGN.md's SDXL and FLUX lines): parsed and checked
/// before anything loads; the pipeline refuses those its family has no use for.
struct FamilyFlags: ParsableArguments {
    @Option(help: "SDXL: the prompt for the second text encoder (prompt_2); default: --prompt.")
    var prompt2: String?

    @Option(help: "SDXL: the negative prompt for the second text encoder (negative_prompt_2); default: --negative-prompt.")
    var negativePrompt2: String?

    @Option(help: "SDXL micro-conditioning: the original size WxH (default: the image size).")
    var originalSize: String?

    @Option(help: "SDXL micro-conditioning: the target size WxH (default: the image size).")
    var targetSize: String?

    @Option(help: "SDXL micro-conditioning: the crop's top-left corner TOP,LEFT (default 0,0).")
    var cropsCoordsTopLeft: String?

    @Option(help: "SDXL: the negative original size WxH (text-to-image uses the negative sizes only when both are given).")
    var negativeOriginalSize: String?

    @Option(help: "SDXL: the negative target size WxH.")
    var negativeTargetSize: String?

    @Option(help: "SDXL: the negative crop's top-left corner TOP,LEFT.")
    var negativeCropsCoordsTopLeft: String?

    @Option(parsing: .unconditional, help: "SDXL image-to-image with requires_aesthetics_score (the refiner): the aesthetic score (default 6).")
    var aestheticScore: Float?

    @Option(parsing: .unconditional, help: "SDXL refiner: the negative aesthetic score (default 2.5).")
    var negativeAestheticScore: Float?

    @Option(parsing: .unconditional, help: "Guidance rescale φ (Diffusers' guidance_rescale; 0 is off).")
    var guidanceRescale: Float?

    @Option(parsing: .unconditional, help: "SDXL: stop this fraction of the way through the schedule, in (0, 1) (the base of a base + refiner ensemble; pair with --save-latents).")
    var denoisingEnd: Double?

    @Option(parsing: .unconditional, help: "SDXL image-to-image: start this fraction of the way in, in (0, 1), from --image-latents (the refiner of an ensemble).")
    var denoisingStart: Double?

    @Option(parsing: .unconditional, help: "FLUX: true classifier-free guidance scale (true_cfg_scale) with --negative-prompt; 1 is off.")
    var trueCfgScale: Float?

    @Option(parsing: .unconditional, help: "FLUX: T5 tokens per prompt (max_sequence_length), at most 512 (default 512).")
    var maxSequenceLength: Int?

    @Option(help: "Also write the final latents as f32 tensor \"latents\" (safetensors), as output_type=\"latent\" gives them.")
    var saveLatents: String?

    @Option(help: "Image-to-image from latents instead of --image: a safetensors file with tensor \"latents\" [B, 4, h, w] (what --save-latents wrote).")
    var imageLatents: String?

    func validate() throws {
        for (flag, value) in [("--original-size", originalSize), ("--target-size", targetSize),
                              ("--negative-original-size", negativeOriginalSize), ("--negative-target-size", negativeTargetSize)] {
            if let value { _ = try Self.size(value, flag) }
        }
        for (flag, value) in [("--crops-coords-top-left", cropsCoordsTopLeft), ("--negative-crops-coords-top-left", negativeCropsCoordsTopLeft)] {
            if let value { _ = try Self.corner(value, flag) }
        }
        for (flag, value) in [("--aesthetic-score", aestheticScore), ("--negative-aesthetic-score", negativeAestheticScore),
                              ("--guidance-rescale", guidanceRescale), ("--true-cfg-scale", trueCfgScale)] {
            if let value, !value.isFinite { throw ValidationError("\(flag) must be a finite number, not \(value)") }
        }
        for (flag, value) in [("--denoising-end", denoisingEnd), ("--denoising-start", denoisingStart)] {
            if let value, !(value.isFinite && value > 0 && value < 1) {
                throw ValidationError("\(flag) must be between 0 and 1 (exclusive), not \(value)")
            }
        }
        if let start = denoisingStart, let end = denoisingEnd, start >= end {
            throw ValidationError("--denoising-start (\(start)) must be below --denoising-end (\(end))")
        }
        if let length = maxSequenceLength, !(1...512).contains(length) {
            throw ValidationError("--max-sequence-length cannot be greater than 512 (nor below 1), but is \(length)")
        }
    }

    /// The flags applied to `options`.
    func apply(to options: inout GenerationOptions) throws {
        options.prompts2 = prompt2.map { [$0] }
        options.negativePrompts2 = negativePrompt2.map { [$0] }
        if let guidanceRescale { options.guidanceRescale = guidanceRescale }
        options.denoisingEnd = denoisingEnd
        options.denoisingStart = denoisingStart
        if let trueCfgScale { options.trueCFGScale = trueCfgScale }
        options.maxSequenceLength = maxSequenceLength
        var micro = MicroConditioning()
        micro.originalSize = try originalSize.map { try Self.size($0, "--original-size") }
        micro.targetSize = try targetSize.map { try Self.size($0, "--target-size") }
        micro.negativeOriginalSize = try negativeOriginalSize.map { try Self.size($0, "--negative-original-size") }
        micro.negativeTargetSize = try negativeTargetSize.map { try Self.size($0, "--negative-target-size") }
        if let corner = try cropsCoordsTopLeft.map({ try Self.corner($0, "--crops-coords-top-left") }) { micro.cropsCoordsTopLeft = corner }
        if let corner = try negativeCropsCoordsTopLeft.map({ try Self.corner($0, "--negative-crops-coords-top-left") }) {
            micro.negativeCropsCoordsTopLeft = corner
        }
        micro.aestheticScore = aestheticScore
        micro.negativeAestheticScore = negativeAestheticScore
        options.microConditioning = micro
    }

    /// `WxH`, both positive and at most the largest side a pipeline takes.
    static func size(_ text: String, _ flag: String) throws -> ImageSize {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]),
              (1...DiffusionPipeline.maximumImageSide).contains(width), (1...DiffusionPipeline.maximumImageSide).contains(height) else {
            throw ValidationError("\(flag) must be WIDTHxHEIGHT in pixels, each from 1 to \(DiffusionPipeline.maximumImageSide) (e.g. 1024x768), not '\(text)'")
        }
        return ImageSize(width: width, height: height)
    }

    /// `TOP,LEFT`, both at least 0.
    static func corner(_ text: String, _ flag: String) throws -> (top: Int, left: Int) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let top = Int(parts[0]), let left = Int(parts[1]),
              (0...DiffusionPipeline.maximumImageSide).contains(top), (0...DiffusionPipeline.maximumImageSide).contains(left) else {
            throw ValidationError("\(flag) must be TOP,LEFT in pixels, each from 0 to \(DiffusionPipeline.maximumImageSide) (e.g. 0,0), not '\(text)'")
        }
        return (top, left)
    }
}
