import Foundation
import Images
import Models
import NN
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The whole pipeline against Diffusers' runs on the tiny SD folder: latents within 1e-4
/// relative L2, decoded images within 2e-3 max absolute difference (DESIGN.md).
final class StableDiffusionPipelineTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-sd").path
    static let outputs = Result { try SafeTensorsFile(path: root + "/outputs/pipeline.safetensors") }

    func fixture(_ name: String) throws -> Tensor { try Self.outputs.get().tensor(named: name) }

    func assertImage(_ actual: Tensor, _ expected: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
        let worst = maxAbsDifference(try actual.floats(), try expected.floats())
        XCTAssertLessThanOrEqual(worst, 2e-3, "\(label): max abs difference \(worst)", file: file, line: line)
    }

    func assertLatents(_ actual: Tensor, _ expected: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertRelativeL2(actual, expected, within: 1e-4, label, file: file, line: line)
    }

    func testEncodePrompt() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.root)
        let (positive, negative) = try pipeline.encodePrompt(["a red circle"], negativePrompts: [""], classifierFreeGuidance: true)
        try assertLatents(positive, fixture("encode_prompt.prompt_embeds"), "prompt embeddings")
        try assertLatents(XCTUnwrap(negative), fixture("encode_prompt.negative_prompt_embeds"), "negative prompt embeddings")
    }

    func testTextToImageWithPNDMAndDDIM() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.root)
        for (scheduler, steps) in [("pndm", 3), ("pndm", 2), ("ddim", 3), ("ddim", 2)] {
            if scheduler == "ddim" { try pipeline.useScheduler(.ddim) }
            var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
            options.steps = steps
            options.width = 64
            options.height = 64
            options.latents = try fixture("txt2img.latents_in")
            var events: [StepEvent] = []
            let result = try pipeline.generate(options) { events.append($0); return true }
            let key = "txt2img.\(scheduler).steps\(steps)"
            XCTAssertEqual(events.count, pipeline.scheduler.timesteps.count)
            try assertLatents(result.latents, fixture(key + ".latents_out"), key + " latents")
            try assertImage(result.images, fixture(key + ".image"), key + " image")
        }
    }

    func testImageToImageWithRecordedNoise() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.root)
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        options.steps = 3
        let image = try fixture("img2img.image_in").scaled(by: 2, adding: -1)           // [0, 1] → [-1, 1]
        let result = try StableDiffusionImg2ImgPipeline(pipeline).generate(
            options, image: image, strength: 0.75, noise: fixture("img2img.noise_add"),
            latentSampleNoise: fixture("img2img.noise_vae_sample"))
        try assertLatents(result.latents, fixture("img2img.step_latents.2"), "img2img latents")
        try assertImage(result.images, fixture("img2img.image"), "img2img image")
        // The PNG the fixture started from decodes to the same pixels.
        let png = try VaeImageProcessor(vaeScaleFactor: pipeline.vaeScaleFactor, resample: nil, normalize: false)
            .preprocess(Image(contentsOfFile: Self.root + "/init.png"))
        XCTAssertEqual(try png.floats(), try fixture("img2img.image_in").floats())
    }

    func testCancellationBetweenSteps() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.root)
        var options = GenerationOptions(prompt: "a red circle")
        options.steps = 3
        options.width = 64
        options.height = 64
        XCTAssertThrowsError(try pipeline.generate(options) { $0.step < 2 }) { error in
            XCTAssertEqual(error as? PipelineError, .cancelled)
        }
    }

    func testBadOptionsAreClearErrors() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.root)
        var options = GenerationOptions(prompt: "x")
        options.width = 60
        XCTAssertThrowsError(try pipeline.generate(options)) { XCTAssertTrue("\($0)".contains("multiple of 8 pixels"), "\($0)") }
        XCTAssertThrowsError(try pipeline.generate(GenerationOptions(prompts: []))) { XCTAssertTrue("\($0)".contains("prompt"), "\($0)") }
        options = GenerationOptions(prompt: "x")
        options.imagesPerPrompt = 0
        XCTAssertThrowsError(try pipeline.generate(options))
        XCTAssertThrowsError(try StableDiffusionImg2ImgPipeline(pipeline).generate(GenerationOptions(prompt: "x"),
                                                                                   image: Tensor.zeros([1, 3, 64, 64]), strength: 1.5))
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: Self.root + "/unet")) { error in
            XCTAssertTrue("\(error)".contains("model_index.json"), "\(error)")
        }
    }
}

/// Call arguments checked against `outputs/calls.safetensors` (tools/reference/make_sd_call_fixtures.py).
final class StableDiffusionCallArgumentTests: XCTestCase {
    static let calls = Result { try SafeTensorsFile(path: StableDiffusionPipelineTests.root + "/outputs/calls.safetensors") }
    func fixture(_ name: String) throws -> Tensor { try Self.calls.get().tensor(named: name) }

    func testGuidanceRescale() throws {
        let pipeline = try StableDiffusionPipeline(folder: StableDiffusionPipelineTests.root)
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        options.steps = 3
        options.width = 64
        options.height = 64
        options.guidanceRescale = 0.7
        options.latents = try fixture("guidance_rescale.latents_in")
        let result = try pipeline.generate(options)
        try assertRelativeL2(result.latents, fixture("guidance_rescale.latents_out"), within: 1e-4, "guidance_rescale latents")
        XCTAssertLessThanOrEqual(maxAbsDifference(try result.images.floats(), try fixture("guidance_rescale.image").floats()), 2e-3)
        // And it changes the image: the rescale is not a no-op at 0.7.
        options.guidanceRescale = 0
        XCTAssertGreaterThan(maxAbsDifference(try pipeline.generate(options).images.floats(), try result.images.floats()), 1e-3)
    }

    /// A 9×13 sample, not a multiple of the UNet's downsampling: each upsampler resizes to its
    /// skip's size, as Diffusers' `forward_upsample_size`.
    func testUNetOnASizeNotAMultipleOfItsDownsampling() throws {
        let pipeline = try StableDiffusionPipeline(folder: StableDiffusionPipelineTests.root)
        let out = try pipeline.unet(fixture("unet_odd.sample"), timestep: Tensor(int64: [981], shape: []),
                                    encoderHiddenStates: fixture("unet_odd.encoder_hidden_states"))
        try assertRelativeL2(out, fixture("unet_odd.out"), within: 1e-4, "UNet at 9×13")
    }

    func testSDXLArgumentsAreRefused() throws {
        let pipeline = try StableDiffusionPipeline(folder: StableDiffusionPipelineTests.root)
        var options = GenerationOptions(prompt: "a red circle")
        options.steps = 1
        options.microConditioning.aestheticScore = 6
        XCTAssertThrowsError(try pipeline.generate(options)) { XCTAssertTrue("\($0)".contains("has no aesthetic_score"), "\($0)") }
        options.microConditioning = MicroConditioning()
        options.prompts2 = ["a blue square"]
        XCTAssertThrowsError(try pipeline.generate(options)) { XCTAssertTrue("\($0)".contains("has no prompt_2"), "\($0)") }
    }
}
