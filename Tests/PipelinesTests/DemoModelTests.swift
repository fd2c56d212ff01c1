import Foundation
import Images
import NN
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The demo pipeline shipped in models/demo (trained by tools/demo-model): it gives Diffusers'
/// image from the same initial latents, and it draws what it is asked — judged from the pixels.
final class DemoModelTests: XCTestCase {
    static let folder = packageRoot + "/models/demo"

    /// The dataset's colours, shapes and sizes (tools/demo-model/attributes.json, which the
    /// generator that drew the training images wrote).
    struct Attributes {
        let palette: [(name: String, rgb: SIMD3<Float>)]
        let shapes: [String]
        let sizes: [String]

        init(path: String) throws {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let colours = try XCTUnwrap(object["colours"] as? [String])
            let palette = try XCTUnwrap(object["palette"] as? [String: [Double]])
            self.palette = try colours.map { name in
                let rgb = try XCTUnwrap(palette[name], name)
                return (name, SIMD3(Float(rgb[0]), Float(rgb[1]), Float(rgb[2])))
            }
            shapes = try XCTUnwrap(object["shapes"] as? [String])
            sizes = try XCTUnwrap((object["sizes"] as? [String: Any]).map { $0.keys.sorted() })
        }

        /// The palette colour nearest to a pixel (RGB in 0...255).
        func nearest(_ pixel: SIMD3<Float>) -> Int {
            var best = 0, bestDistance = Float.infinity
            for (index, colour) in palette.enumerated() {
                let d = pixel - colour.rgb
                let distance = (d * d).sum()
                if distance < bestDistance { (best, bestDistance) = (index, distance) }
            }
            return best
        }
    }

    /// What an image shows, by the palette: the dominant colour of the 4-pixel border ring
    /// (the background) and the dominant colour of the pixels that are not that colour (the
    /// shape), with how many pixels that is.
    static func dominantColours(_ image: Tensor, _ attributes: Attributes) throws -> (background: Int, shape: Int, shapePixels: Int) {
        let (height, width) = (image.shape[2], image.shape[3])  // [1, 3, H, W] in [0, 1]
        let values = try image.floats()
        let plane = height * width
        var border = [Int](repeating: 0, count: attributes.palette.count)
        var classes = [Int](repeating: 0, count: plane)
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                let pixel = SIMD3(values[i], values[plane + i], values[2 * plane + i]) * 255
                classes[i] = attributes.nearest(pixel)
                if min(x, y, width - 1 - x, height - 1 - y) < 4 { border[classes[i]] += 1 }
            }
        }
        let background = border.indices.max { border[$0] < border[$1] } ?? 0
        var inside = [Int](repeating: 0, count: attributes.palette.count)
        for c in classes where c != background { inside[c] += 1 }
        let shape = inside.indices.max { inside[$0] < inside[$1] } ?? 0
        return (background, shape, inside[shape])
    }

    /// 24 single-shape prompts in the dataset's grammar, every colour as shape and as background,
    /// every shape and size; each with its own seed.
    static func prompts(_ attributes: Attributes) -> [(prompt: String, shape: Int, background: Int, seed: UInt64)] {
        let count = attributes.palette.count
        return (0..<24).map { i in
            let shape = i % count
            var background = (i * 3 + 2) % count
            if background == shape { background = (background + 1) % count }
            let size = attributes.sizes[i % attributes.sizes.count]
            let form = attributes.shapes[(i / 2) % attributes.shapes.count]
            let prompt = "a \(size) \(attributes.palette[shape].name) \(form) on a \(attributes.palette[background].name) background"
            return (prompt, shape, background, UInt64(1000 + i))
        }
    }

    /// Diffusers' run of the demo pipeline (Tests/Fixtures/demo, tools/demo-model/make_fixture.py):
    /// the same initial latents give the same prompt embeddings, final latents and image within
    /// DESIGN.md's tolerances.
    func testSameImageAsDiffusers() throws {
        let fixture = try Fixtures.file("demo/parity.safetensors")
        let metadata = try XCTUnwrap(fixture.metadata)
        let pipeline = try StableDiffusionPipeline(folder: Self.folder)
        var options = GenerationOptions(prompt: try XCTUnwrap(metadata["prompt"]), negativePrompt: metadata["negative_prompt"])
        options.steps = try XCTUnwrap(metadata["steps"].flatMap { Int($0) })
        options.guidanceScale = try XCTUnwrap(metadata["guidance_scale"].flatMap { Float($0) })
        options.latents = try fixture.tensor(named: "latents")
        let (positive, negative) = try pipeline.encodePrompt([options.prompts[0]], negativePrompts: [""], classifierFreeGuidance: true)
        try assertRelativeL2(positive, fixture.tensor(named: "prompt_embeds"), within: 1e-4, "prompt embeddings")
        try assertRelativeL2(XCTUnwrap(negative), fixture.tensor(named: "negative_prompt_embeds"), within: 1e-4, "negative prompt embeddings")
        let result = try pipeline.generate(options)
        XCTAssertEqual(String(describing: type(of: pipeline.scheduler)), metadata["scheduler"], "the folder's scheduler")
        try assertRelativeL2(result.latents, fixture.tensor(named: "latents_out"), within: 1e-4, "final latents")
        XCTAssertEqual(result.images.shape, [1, 3, 64, 64])
        let worst = maxAbsDifference(try result.images.floats(), try fixture.tensor(named: "image").floats())
        XCTAssertLessThanOrEqual(worst, 2e-3, "image: max abs difference \(worst)")
    }

    /// The same pipeline as saved by current Diffusers with transformers 5, whose tokenizer folder
    /// holds only tokenizer.json and tokenizer_config.json: it loads and encodes prompts alike.
    func testPipelineWithATokenizerSavedByTransformers5() throws {
        let folder = NSTemporaryDirectory() + "demo-t5-" + UUID().uuidString
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? manager.removeItem(atPath: folder) }
        for entry in ["model_index.json", "scheduler", "text_encoder", "unet", "vae"] {
            try manager.createSymbolicLink(atPath: folder + "/" + entry, withDestinationPath: Self.folder + "/" + entry)
        }
        try manager.createSymbolicLink(atPath: folder + "/tokenizer", withDestinationPath: Fixtures.path("tokenizer/saved-by-transformers5"))
        let prompt = ["a small purple star at the top on a white background"]
        let saved = try StableDiffusionPipeline(folder: folder).encodePrompt(prompt, negativePrompts: [""], classifierFreeGuidance: false).0
        let original = try StableDiffusionPipeline(folder: Self.folder).encodePrompt(prompt, negativePrompts: [""], classifierFreeGuidance: false).0
        XCTAssertEqual(try saved.floats(), try original.floats())
    }

    func testDrawsThePromptedColours() throws {
        let attributes = try Attributes(path: packageRoot + "/tools/demo-model/attributes.json")
        let pipeline = try StableDiffusionPipeline(folder: Self.folder)
        var passed = 0
        var failures: [String] = []
        let cases = Self.prompts(attributes)
        for item in cases {
            var options = GenerationOptions(prompt: item.prompt)
            options.steps = DemoSettings.steps
            options.guidanceScale = DemoSettings.guidance
            options.seed = item.seed
            let image = try pipeline.generate(options).images
            let seen = try Self.dominantColours(image, attributes)
            // A shape must cover at least ~60 pixels (a small shape is 18–22 px across).
            if seen.background == item.background && seen.shape == item.shape && seen.shapePixels >= 60 {
                passed += 1
            } else {
                failures.append("\(item.prompt) (seed \(item.seed)): background \(attributes.palette[seen.background].name), shape \(attributes.palette[seen.shape].name) × \(seen.shapePixels)")
            }
        }
        let rate = Double(passed) / Double(cases.count)
        print("demo model prompt adherence: \(passed)/\(cases.count) = \(Int((rate * 100).rounded())) %")
        XCTAssertGreaterThanOrEqual(rate, 0.8, "prompt adherence \(passed)/\(cases.count); failed: \(failures.joined(separator: "; "))")
    }

    /// The classifier itself: a drawn background and square are read back as drawn, so the
    /// adherence test cannot pass on images it cannot read.
    func testColourReaderOnADrawnImage() throws {
        let attributes = try Attributes(path: packageRoot + "/tools/demo-model/attributes.json")
        let (background, shape) = (2, 3)
        var values = [Float](repeating: 0, count: 3 * 64 * 64)
        for y in 0..<64 {
            for x in 0..<64 {
                let colour = (20..<44).contains(x) && (20..<44).contains(y) ? attributes.palette[shape].rgb : attributes.palette[background].rgb
                for c in 0..<3 { values[c * 4096 + y * 64 + x] = colour[c] / 255 }
            }
        }
        let seen = try Self.dominantColours(Tensor(values, shape: [1, 3, 64, 64]), attributes)
        XCTAssertEqual(seen.background, background)
        XCTAssertEqual(seen.shape, shape)
        XCTAssertEqual(seen.shapePixels, 24 * 24)
    }
}

/// How the demo pipeline is run (tools/demo-model/README.md recommends these).
enum DemoSettings {
    static let steps = 25
    static let guidance: Float = 7.5
}
