import ArgumentParser
import Diffusers
import Foundation

/// `diffuse generate --model DIR --prompt TEXT ...` (DESIGN.md's command-line contract; the
/// memory options arrive with the memory toolkit).
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images with a Stable Diffusion pipeline folder (Diffusers format).")

    @Option(help: "Pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/).")
    var model: String

    @Option(help: "The prompt.")
    var prompt: String?

    @Option(help: "What to steer away from (classifier-free guidance).")
    var negativePrompt: String?

    @Option(help: "Denoising steps.")
    var steps = 50

    @Option(help: "Guidance scale; 1 or less turns classifier-free guidance off.")
    var guidance: Float = 7.5

    @Option(help: "Image width in pixels (a multiple of 8; default: the UNet's sample size × 8).")
    var width: Int?

    @Option(help: "Image height in pixels (a multiple of 8).")
    var height: Int?

    @Option(help: "Seed of the PyTorch-compatible generator (same seed, same initial noise as Diffusers).")
    var seed: UInt64 = 0

    @Option(help: "Images per prompt.")
    var batch = 1

    @Option(help: "Scheduler to use instead of the pipeline's: pndm, ddim, euler, euler-ancestral, dpm-solver.")
    var scheduler: String?

    @Option(help: "Init image (PNG) for image-to-image.")
    var image: String?

    @Option(help: "How much of the init image to replace, in [0, 1] (image-to-image).")
    var strength: Float = 0.8

    @Option(help: "Initial noise: a safetensors file with a tensor \"latents\" [B, 4, h, w] f32.")
    var latents: String?

    @Option(help: "Where to write the PNG (a batch writes NAME-0.png, NAME-1.png, ...).")
    var out = "out.png"

    @Option(help: "Also write the decoded images as f32 tensor \"image\" [B, 3, H, W] in [0, 1] (safetensors).")
    var saveTensor: String?

    @Option(help: "Write a JSON report of options, timings and memory.")
    var report: String?

    @Option(help: "Compute dtype: f32, bf16 or f16.")
    var dtype = "f32"

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, not \(steps)") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, not \(batch)") }
        for (name, value) in [("--width", width), ("--height", height)] {
            if let value, value <= 0 || value % 8 != 0 { throw ValidationError("\(name) must be a positive multiple of 8, not \(value)") }
        }
        guard (0...1).contains(strength) else { throw ValidationError("--strength must be between 0 and 1, not \(strength)") }
        guard prompt != nil else { throw ValidationError("--prompt is required") }
        guard DType(name: dtype).map({ [.f32, .bf16, .f16].contains($0) }) ?? false else {
            throw ValidationError("--dtype must be f32, bf16 or f16, not \(dtype)")
        }
        if let scheduler, SchedulerKind(name: scheduler) == nil {
            throw ValidationError("--scheduler must be one of pndm, ddim, euler, euler-a, dpm++, not \(scheduler)")
        }
    }

    func run() throws {
        let started = Date()
        ProcessMemory.resetPeak()
        let computeType = DType(name: dtype) ?? .f32
        let pipeline = try StableDiffusionPipeline(folder: model, dtype: computeType)
        if let scheduler, let kind = SchedulerKind(name: scheduler) { try pipeline.useScheduler(kind) }
        let loadSeconds = Date().timeIntervalSince(started)

        var options = GenerationOptions(prompt: prompt ?? "", negativePrompt: negativePrompt)
        options.steps = steps
        options.guidanceScale = guidance
        options.width = width
        options.height = height
        options.seed = seed
        options.imagesPerPrompt = batch
        if let latents {
            options.latents = try SafeTensorsFile(path: latents).tensor(named: "latents")
        }
        let bar = ProgressBar(total: 0)
        let result: GenerationResult
        if let image {
            let picture = try Image(contentsOfFile: image)
            let tensor = try VaeImageProcessor(vaeScaleFactor: pipeline.vaeScaleFactor).preprocess(picture, width: width, height: height)
            result = try StableDiffusionImg2ImgPipeline(pipeline).generate(options, image: tensor, strength: strength) { bar.update($0); return true }
        } else {
            result = try pipeline.generate(options) { bar.update($0); return true }
        }
        bar.finish()

        var outputs = try Image.write(VaeImageProcessor(normalize: false).postprocess(result.images), to: out)
        if let saveTensor {
            try SafeTensorsWriter.write(["image": result.images], to: saveTensor)
            outputs.append(saveTensor)
        }
        for path in outputs { print("wrote \(path)") }
        if let report {
            let document = RunReport(options: resolvedOptions(pipeline), loadSeconds: loadSeconds, result: result,
                                     totalSeconds: Date().timeIntervalSince(started), outputs: outputs)
            try document.write(to: report)
            print("wrote \(report)")
        }
    }

    private func resolvedOptions(_ pipeline: StableDiffusionPipeline) -> [String: String] {
        var options: [String: String] = [
            "model": model, "prompt": prompt ?? "", "steps": "\(steps)", "guidance": "\(guidance)", "seed": "\(seed)",
            "batch": "\(batch)", "dtype": dtype, "scheduler": "\(type(of: pipeline.scheduler))", "device": "cpu",
            "width": "\(width ?? pipeline.unet.config.sampleSize * pipeline.vaeScaleFactor)",
            "height": "\(height ?? pipeline.unet.config.sampleSize * pipeline.vaeScaleFactor)",
        ]
        if let negativePrompt { options["negative_prompt"] = negativePrompt }
        if let image { options["image"] = image; options["strength"] = "\(strength)" }
        if let latents { options["latents"] = latents }
        return options
    }
}
