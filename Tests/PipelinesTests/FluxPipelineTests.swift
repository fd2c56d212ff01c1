import Foundation
import JSON
import Models
import NN
import Pipelines
import Schedulers
import Tensor
import TestSupport
import XCTest

/// The FLUX pipelines against Diffusers' runs on the tiny dev and schnell pipelines
/// (tools/reference/make_flux_fixtures.py): the noise drawn from the seed as Diffusers draws
/// it, latents within 1e-4 relative L2, images within 2e-3 max absolute difference; the
/// schedule's sigmas and timesteps equal Diffusers' for both configs at several sizes.
final class FluxPipelineTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let dev = fixtures + "/tiny-flux-dev", schnell = fixtures + "/tiny-flux-schnell"
    static let devCalls = Result { try SafeTensorsFile(path: dev + "/outputs/calls.safetensors") }
    static let schnellCalls = Result { try SafeTensorsFile(path: schnell + "/outputs/calls.safetensors") }

    func fixture(_ name: String, schnell: Bool = false) throws -> Tensor {
        try (schnell ? Self.schnellCalls : Self.devCalls).get().tensor(named: name)
    }

    func assertRun(_ result: GenerationResult, _ key: String, schnell: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertRelativeL2(result.latents, fixture(key + ".latents_out", schnell: schnell), within: 1e-4, key + " latents", file: file, line: line)
        let expected = try fixture(key + ".image", schnell: schnell)
        XCTAssertEqual(result.images.shape, expected.shape, key, file: file, line: line)
        let worst = maxAbsDifference(try result.images.floats(), try expected.floats())
        XCTAssertLessThanOrEqual(worst, 2e-3, "\(key) image: max abs difference \(worst)", file: file, line: line)
    }

    func pipeline(_ folder: String = dev, dtype: DType = .f32) throws -> FluxPipeline {
        try XCTUnwrap(try AutoPipeline.textToImage(folder: folder, dtype: dtype) as? FluxPipeline)
    }

    /// The fixture runs' arguments: 3 steps at 32×32 with guidance 3.5 unless changed.
    func options(_ prompt: String = "a red fox in the snow", seed: UInt64, width: Int = 32, height: Int = 32) -> GenerationOptions {
        var options = GenerationOptions(prompt: prompt)
        (options.steps, options.guidanceScale, options.width, options.height, options.seed) = (3, 3.5, width, height, seed)
        return options
    }

    func testEncodePrompt() throws {
        let pipe = try pipeline()
        let (embeds, pooled) = try pipe.encodePrompt(["a red fox in the snow"])
        try assertRelativeL2(embeds, fixture("square.prompt_embeds"), within: 1e-4, "T5 prompt_embeds")
        try assertRelativeL2(pooled, fixture("square.pooled_prompt_embeds"), within: 1e-4, "CLIP pooled")
        let short = try pipe.encodePrompt(["a red fox in the snow"], prompts2: ["a watercolor painting of a mountain village at dawn"],
                                          maxSequenceLength: 16)
        try assertRelativeL2(short.embeds, fixture("prompt_2.prompt_embeds"), within: 1e-4, "prompt_2, 16 tokens")
    }

    func testDevTextToImage() throws {
        let pipe = try pipeline()
        let square = try pipe.generate(options(seed: 0))
        try assertRun(square, "square")
        XCTAssertTrue(square.notes.isEmpty, "\(square.notes)")
        try assertRun(pipe.generate(options(seed: 1, width: 24, height: 40)), "nonsquare")
        // 42×30 is no multiple of 4 (2 × the tiny VAE's factor): floored to 40×28 with a note, as Diffusers warns.
        let odd = try pipe.generate(options(seed: 2, width: 42, height: 30))
        try assertRun(odd, "odd_size")
        XCTAssertTrue(odd.notes.contains { $0.contains("divisible by 4") }, "\(odd.notes)")
        // The same noise given as unpacked latents gives the same image.
        var given = options(seed: 99)
        given.latents = try fixture("square.latents_in")
        try assertRun(pipe.generate(given), "square")
    }

    func testTrueCFGPrompt2AndBatch() throws {
        let pipe = try pipeline()
        var cfg = options(seed: 3)
        (cfg.negativePrompts, cfg.trueCFGScale) = (["blurry, low quality"], 2)
        try assertRun(pipe.generate(cfg), "true_cfg")
        var second = options(seed: 4)
        (second.prompts2, second.maxSequenceLength) = (["a watercolor painting of a mountain village at dawn"], 16)
        try assertRun(pipe.generate(second), "prompt_2")
        var batch = GenerationOptions(prompts: ["a red fox in the snow", "a small wooden boat on a calm lake"])
        (batch.steps, batch.guidanceScale, batch.width, batch.height, batch.seed) = (3, 3.5, 32, 32, 5)
        try assertRun(pipe.generate(batch), "batch2")
    }

    /// true_cfg_scale without a negative prompt is ignored, as Diffusers ignores it, and said.
    func testIgnoredOptionsAreNoted() throws {
        let pipe = try pipeline()
        var cfg = options(seed: 0)
        cfg.trueCFGScale = 4
        let result = try pipe.generate(cfg)
        try assertRun(result, "square")
        XCTAssertTrue(result.notes.contains { $0.contains("true_cfg_scale") }, "\(result.notes)")
    }

    func testSchnell() throws {
        let pipe = try pipeline(Self.schnell)
        var run = options(seed: 0)
        (run.steps, run.guidanceScale, run.maxSequenceLength) = (2, 0, 256)
        let result = try pipe.generate(run)
        try assertRun(result, "square", schnell: true)
        XCTAssertTrue(result.notes.isEmpty, "\(result.notes)")
        // A guidance scale means nothing to schnell (no guidance embedding): the same image, and a note.
        run.guidanceScale = 5
        let ignored = try pipe.generate(run)
        try assertRun(ignored, "square", schnell: true)
        XCTAssertTrue(ignored.notes.contains { $0.contains("guidance") }, "\(ignored.notes)")
    }

    func testImageToImage() throws {
        let pipe = try pipeline()
        let image = try fixture("img2img.init_image").scaled(by: 2, adding: -1)
        var run = GenerationOptions(prompt: "a small wooden boat on a calm lake")
        (run.steps, run.guidanceScale, run.seed) = (4, 3.5, 6)
        let result = try FluxImg2ImgPipeline(pipe).generate(run, image: image, strength: 0.6)
        try assertRun(result, "img2img")
    }

    /// FluxPipeline's timesteps (linspace sigmas shifted by μ of the token count) for FLUX.1-dev's
    /// and schnell's scheduler configs at 256² to 1360×768 and 1, 4 and 28 steps.
    func testScheduleEqualsDiffusers() throws {
        let document = try JSONParser.parse(Array(Data(contentsOf: URL(fileURLWithPath: Self.dev + "/outputs/schedule.json"))))
        let cases = try XCTUnwrap(document["cases"]?.arrayValue)
        XCTAssertEqual(cases.count, 30)
        let pipes = ["flux-dev": try pipeline(), "flux-schnell": try pipeline(Self.schnell)]
        for entry in cases {
            let name = try XCTUnwrap(entry["config"]?.stringValue), steps = try XCTUnwrap(entry["steps"]?.intValue)
            let length = try XCTUnwrap(entry["image_seq_len"]?.intValue)
            let pipe = try XCTUnwrap(pipes[name])
            try pipe.setSchedule(steps: steps, imageSequenceLength: length)
            let flow = try XCTUnwrap(pipe.scheduler as? FlowMatchEulerDiscreteScheduler)
            let label = "\(name) \(entry["width"]?.intValue ?? 0)×\(entry["height"]?.intValue ?? 0) \(steps) steps"
            XCTAssertEqual(flow.sigmas, try XCTUnwrap(entry["sigmas"]?.arrayValue).compactMap { $0.doubleValue.map(Float.init) }, label)
            XCTAssertEqual(flow.timesteps.map(\.value), try XCTUnwrap(entry["timesteps"]?.arrayValue).compactMap { $0.doubleValue.map(Float.init) }, label)
        }
    }
}
