import Foundation
import Models
import NN
import Pipelines
import Schedulers
import Tensor
import TestSupport
import XCTest

/// The SDXL pipelines against Diffusers' runs on the tiny SDXL base and refiner
/// (tools/reference/make_sdxl_fixtures.py): latents within 1e-4 relative L2, images within
/// 2e-3 max absolute difference.
final class StableDiffusionXLPipelineTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let base = fixtures + "/tiny-sdxl", refiner = fixtures + "/tiny-sdxl-refiner"
    static let calls = Result { try SafeTensorsFile(path: base + "/outputs/calls.safetensors") }
    func fixture(_ name: String) throws -> Tensor { try Self.calls.get().tensor(named: name) }

    func assertRun(_ result: GenerationResult, _ key: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertRelativeL2(result.latents, fixture(key + ".latents_out"), within: 1e-4, key + " latents", file: file, line: line)
        let expected = try fixture(key + ".image")
        XCTAssertEqual(result.images.shape, expected.shape, key, file: file, line: line)
        let worst = maxAbsDifference(try result.images.floats(), try expected.floats())
        XCTAssertLessThanOrEqual(worst, 2e-3, "\(key) image: max abs difference \(worst)", file: file, line: line)
    }

    /// The options of the fixture's text-to-image runs: 32×32, 3 steps, guidance 5.
    func options(_ prompt: String = "a red circle", negative: String? = "blurry") throws -> GenerationOptions {
        var options = GenerationOptions(prompt: prompt, negativePrompt: negative)
        options.steps = 3
        options.guidanceScale = 5
        options.width = 32
        options.height = 32
        options.latents = try fixture("latents_in")
        return options
    }

    func pipeline() throws -> StableDiffusionXLPipeline {
        try XCTUnwrap(try AutoPipeline.textToImage(folder: Self.base) as? StableDiffusionXLPipeline)
    }

    func testEncodePrompt() throws {
        let prompt = try pipeline().encodePrompt(["a red circle"], prompts2: ["a blue square on a white background"],
                                                 negativePrompts: ["blurry"], classifierFreeGuidance: true)
        try assertRelativeL2(prompt.embeds, fixture("encode_prompt.prompt_embeds"), within: 1e-4, "prompt_embeds")
        try assertRelativeL2(prompt.pooled, fixture("encode_prompt.pooled_prompt_embeds"), within: 1e-4, "pooled")
        try assertRelativeL2(XCTUnwrap(prompt.negativeEmbeds), fixture("encode_prompt.negative_prompt_embeds"), within: 1e-4, "negative")
        try assertRelativeL2(XCTUnwrap(prompt.negativePooled), fixture("encode_prompt.negative_pooled_prompt_embeds"), within: 1e-4,
                             "negative pooled")
    }

    func testTextToImageVariants() throws {
        let pipe = try pipeline()
        try assertRun(pipe.generate(options()), "t2i")
        // No negative prompt: force_zeros_for_empty_prompt zeroes the negatives; "" is encoded.
        try assertRun(pipe.generate(options(negative: nil)), "t2i_zero_negative")
        try assertRun(pipe.generate(options(negative: "")), "t2i_empty_negative")
        var second = try options()
        second.prompts2 = ["a blue square on a white background"]
        second.negativePrompts2 = ["ugly"]
        try assertRun(pipe.generate(second), "t2i_prompt_2")
        var rescaled = try options()
        rescaled.guidanceRescale = 0.7
        try assertRun(pipe.generate(rescaled), "t2i_guidance_rescale")
        var micro = try options()
        micro.microConditioning.originalSize = ImageSize(width: 768, height: 512)     // Diffusers' (512, 768) is (h, w)
        micro.microConditioning.targetSize = ImageSize(width: 1024, height: 1024)
        micro.microConditioning.cropsCoordsTopLeft = (top: 16, left: 32)
        micro.microConditioning.negativeOriginalSize = ImageSize(width: 256, height: 256)
        micro.microConditioning.negativeTargetSize = ImageSize(width: 512, height: 512)
        micro.microConditioning.negativeCropsCoordsTopLeft = (top: 8, left: 0)
        try assertRun(pipe.generate(micro), "t2i_micro")
        var batch = GenerationOptions(prompts: ["a red circle", "a blue square on a white background"], negativePrompts: ["blurry", ""])
        (batch.steps, batch.guidanceScale, batch.width, batch.height) = (3, 5, 32, 32)
        batch.latents = try fixture("latents_in_batch2")
        try assertRun(pipe.generate(batch), "t2i_batch2")
        try pipe.useScheduler(.dpmSolverMultistep)
        try assertRun(pipe.generate(options()), "t2i_dpm")
    }

    /// The guide's memory switches on SDXL: every attention backend meets Diffusers' numbers;
    /// VAE slicing decodes a batch of 32 prompts as the whole batch does; VAE tiling on image to
    /// image (16 px tiles on 40×56) gives Diffusers' tiled result.
    func testAttentionBackendsVAESlicingAndTiling() throws {
        let pipe = try pipeline()
        for backend in [AttentionBackend.naive, .flash, .sliced(.auto), .sliced(AttentionSliceSize.max), .sliced(.heads(2))] {
            try pipe.setAttentionBackend(backend)
            try assertRun(pipe.generate(options()), "t2i")
        }
        try pipe.setAttentionBackend(.auto)
        var batch = GenerationOptions(prompts: (0..<32).map { "prompt number \($0)" })
        (batch.steps, batch.guidanceScale, batch.width, batch.height) = (1, 5, 32, 32)
        let whole = try pipe.generate(batch)
        try pipe.enableVAESlicing()
        let sliced = try pipe.generate(batch)
        XCTAssertEqual(sliced.images.shape, [32, 3, 32, 32])
        XCTAssertLessThanOrEqual(maxAbsDifference(try sliced.images.floats(), try whole.images.floats()), 1e-5)
        pipe.vae.disableSlicing()
        try pipe.vae.enableTiling(sampleMinSize: 16, latentMinSize: 8, overlapFactor: 0.25)
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "blurry")
        (options.steps, options.guidanceScale) = (3, 5)
        let tiled = try StableDiffusionXLImg2ImgPipeline(pipe).generate(options, image: fixture("image_in_40x56"), strength: 0.6,
                                                                          noise: fixture("i2i_tiled.noise.1"),
                                                                          latentSampleNoise: fixture("i2i_tiled.noise.0"))
        try assertRun(tiled, "i2i_tiled")
    }

    /// f16, the VAE decoding in f32 (force_upcast): within 1.25× of the drift Diffusers' own f16
    /// run shows against its f32 run (make_sdxl_fixtures.py's "t2i_f16", relative L2).
    func testHalfPrecisionWithTheVAEUpcast() throws {
        let diffusers = (latents: 0.0099775, image: 0.0030442)
        let pipeline = try StableDiffusionXLPipeline(folder: Self.base, dtype: .f16)
        XCTAssertTrue(pipeline.vae.config.forceUpcast && pipeline.upcastsForcedVAE)
        let result = try pipeline.generate(options())
        try assertRelativeL2(result.latents, fixture("t2i.latents_out"), within: 1.25 * diffusers.latents, "f16 latents")
        try assertRelativeL2(result.images, fixture("t2i.image"), within: 1.25 * diffusers.image, "f16 image")
    }

    /// The base stops at 0.8 of 10 steps and hands its latents to the refiner, which continues
    /// from the same timestep without adding noise.
    func testBaseToRefinerEnsemble() throws {
        var options = try options()
        options.steps = 10
        options.denoisingEnd = 0.8
        let handed = try pipeline().generate(options)
        try assertRun(handed, "ensemble_base")
        let refiner = try XCTUnwrap(try AutoPipeline.textToImage(folder: Self.refiner) as? StableDiffusionXLPipeline)
        XCTAssertNil(refiner.textEncoder)
        XCTAssertTrue(refiner.requiresAestheticsScore)
        var continued = GenerationOptions(prompt: "a red circle", negativePrompt: "blurry")
        (continued.steps, continued.guidanceScale) = (10, 5)
        continued.denoisingStart = 0.8
        let result = try StableDiffusionXLImg2ImgPipeline(refiner).generate(continued, image: fixture("ensemble_base.latents_out"))
        try assertRun(result, "ensemble_refiner")
    }

    func testImageToImageOnBaseAndRefiner() throws {
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "blurry")
        (options.steps, options.guidanceScale) = (3, 5)
        let image = try fixture("image_in")
        let base = StableDiffusionXLImg2ImgPipeline(try pipeline())
        try assertRun(base.generate(options, image: image, strength: 0.6, noise: fixture("i2i.noise.1"),
                                    latentSampleNoise: fixture("i2i.noise.0")), "i2i")
        let refiner = StableDiffusionXLImg2ImgPipeline(try XCTUnwrap(try AutoPipeline.textToImage(folder: Self.refiner) as? StableDiffusionXLPipeline))
        options.microConditioning.aestheticScore = 7
        options.microConditioning.negativeAestheticScore = 2
        try assertRun(refiner.generate(options, image: image, strength: 0.6, noise: fixture("refiner_i2i.noise.1"),
                                       latentSampleNoise: fixture("refiner_i2i.noise.0")), "refiner_i2i")
        // 24×24: latents 12×12, not a multiple of the refiner UNet's downsampling (8).
        XCTAssertEqual(refiner.base.unet.config.downsamplingFactor, 8)
        try assertRun(refiner.generate(options, image: fixture("image_in_24"), strength: 0.6, noise: fixture("refiner_i2i_24.noise.1"),
                                       latentSampleNoise: fixture("refiner_i2i_24.noise.0")), "refiner_i2i_24")
    }
}

/// SDXL folders and calls that cannot run: one clear error, before anything computes.
final class StableDiffusionXLBadInputTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = try ConfigEditing.temporaryCopy(of: StableDiffusionXLPipelineTests.base, label: "sdxl-bad")
    }

    override func tearDown() { ConfigEditing.removeTemporaryCopy(folder) }

    private func assertLoadFails(_ fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try AutoPipeline.textToImage(folder: folder), line: line) {
            XCTAssertTrue("\($0)".contains(fragment), "\($0)", line: line)
        }
    }

    func testAMissingSecondTextEncoderIsNamed() throws {
        try FileManager.default.removeItem(atPath: folder + "/text_encoder_2")
        assertLoadFails("has no text_encoder_2 folder")
        try ConfigEditing.write(from: folder + "/model_index.json", to: folder + "/model_index.json", ["text_encoder_2": nil])
        assertLoadFails("names no text_encoder_2, which StableDiffusionXLPipeline needs")
    }

    /// The refiner's UNet takes 5 time ids (with the aesthetic score): text to image gives 6,
    /// so its addition embedding's width cannot match; said before the text encoder runs.
    func testTimeIdsThatDoNotFitTheAdditionEmbedding() throws {
        let refiner = try AutoPipeline.textToImage(folder: StableDiffusionXLPipelineTests.refiner)
        var options = GenerationOptions(prompt: "a red circle")
        (options.steps, options.width, options.height) = (1, 32, 32)
        XCTAssertThrowsError(try refiner.generate(options, progress: nil)) {
            XCTAssertTrue("\($0)".contains("projection_class_embeddings_input_dim is 72, but 6 time ids"), "\($0)")
        }
    }

    func testArgumentsThePipelineCannotUse() throws {
        let pipeline = try AutoPipeline.textToImage(folder: folder)
        var options = GenerationOptions(prompt: "a red circle")
        (options.steps, options.width, options.height) = (1, 32, 32)
        options.microConditioning.aestheticScore = 6
        XCTAssertThrowsError(try pipeline.generate(options, progress: nil)) {
            XCTAssertTrue("\($0)".contains("StableDiffusionXLPipeline has no aesthetic_score"), "\($0)")
        }
        options.microConditioning.aestheticScore = nil
        options.denoisingEnd = 1.5
        XCTAssertThrowsError(try pipeline.generate(options, progress: nil)) { XCTAssertTrue("\($0)".contains("denoising_end must be between 0 and 1"), "\($0)") }
        options.denoisingEnd = nil
        options.denoisingStart = 0.5
        XCTAssertThrowsError(try pipeline.generate(options, progress: nil)) { XCTAssertTrue("\($0)".contains("has no denoising_start"), "\($0)") }
        // Image to image without requires_aesthetics_score takes the score and ignores it, as Diffusers; the result says so.
        options.denoisingStart = nil
        options.microConditioning.aestheticScore = 6
        options.steps = 2
        let image = try Tensor.zeros([1, 3, 32, 32])
        let result = try pipeline.imageToImage().generate(options, image: image, strength: 0.5, progress: nil)
        XCTAssertTrue(result.notes.contains { $0.contains("aesthetic_score and negative_aesthetic_score were ignored") }, "\(result.notes)")
        // Latents of the wrong shape for image to image.
        XCTAssertThrowsError(try pipeline.imageToImage().generate(options, image: try Tensor.zeros([1, 5, 16, 16]), strength: 0.5,
                                                                  progress: nil)) {
            XCTAssertTrue("\($0)".contains("latents [B, 4, h, w]"), "\($0)")
        }
    }
}
