import Foundation
import Images
import Pipelines
import XCTest

/// The README's pipeline example, on the tiny pipeline, kept compiling and running.
final class ReadmePipelineExampleTests: XCTestCase {
    func testReadmeExample() throws {
        let pipeline = try StableDiffusionPipeline(folder: StableDiffusionPipelineTests.root)
        var options = GenerationOptions(prompt: "a lighthouse at dusk", negativePrompt: "blurry")
        options.steps = 2
        options.seed = 42
        options.width = 64
        options.height = 64
        var steps = 0
        let result = try pipeline.generate(options) { event in
            steps = event.step
            return true
        }
        let path = NSTemporaryDirectory() + "lighthouse-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let written = try Image.write(VaeImageProcessor(normalize: false).postprocess(result.images), to: path)
        XCTAssertEqual(written, [path])
        XCTAssertEqual(steps, 3)
        // The same seed draws the same noise, so the run is repeatable.
        XCTAssertEqual(try pipeline.generate(options).images.floats(), try result.images.floats())
    }
}
