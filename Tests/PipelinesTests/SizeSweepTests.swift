import Foundation
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The pipelines at a sweep of image sizes: every multiple of the size unit gives a finite
/// image of that size, channels-last (the default) agrees with NCHW, and sizes off the unit are
/// refused in pixels before anything runs. The demo pipeline trapped at 80×80 and 96×64 (25 and
/// 24 pixels at its UNet's lowest level, where 16 rounded-up parts ran past the end) before the
/// work splits were balanced.
final class SizeSweepTests: XCTestCase {
    static let tiny = StableDiffusionPipelineTests.root

    func run(_ pipeline: StableDiffusionPipeline, width: Int, height: Int) throws -> Tensor {
        var options = GenerationOptions(prompt: "a red circle", negativePrompt: "")
        options.steps = 1
        options.width = width
        options.height = height
        return try pipeline.generate(options).images
    }

    func testTinyPipelineAtEveryAwkwardSize() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.tiny)
        XCTAssertEqual(pipeline.sizeMultiple, 8, "VAE ×2 and Diffusers' multiple of 8")
        let sizes = [(8, 8), (16, 16), (24, 24), (40, 40), (48, 48), (56, 56), (72, 72), (80, 80),
                     (96, 64), (64, 96), (104, 8), (8, 104), (136, 40)]
        for (width, height) in sizes {
            let images = try run(pipeline, width: width, height: height)
            XCTAssertEqual(images.shape, [1, 3, height, width], "\(width)×\(height)")
            XCTAssertEqual(try images.nonFiniteCount(), 0, "\(width)×\(height)")
        }
        for (width, height) in [(48, 48), (80, 80), (96, 64)] {
            let channelsLast = try run(pipeline, width: width, height: height)
            pipeline.setMemoryFormat(.contiguous)
            let plain = try run(pipeline, width: width, height: height)
            pipeline.setMemoryFormat(.channelsLast)
            XCTAssertLessThanOrEqual(maxAbsDifference(try channelsLast.floats(), try plain.floats()), 1e-4, "\(width)×\(height)")
        }
    }

    func testDemoPipelineAtASweepOfSizes() throws {
        let pipeline = try StableDiffusionPipeline(folder: packageRoot + "/models/demo")
        XCTAssertEqual(pipeline.sizeMultiple, 8, "VAE ×4 and Diffusers' multiple of 8")
        // 40×24 and 8×8: latents 10×6 and 2×2, not multiples of the UNet's 4 (forward_upsample_size).
        for (width, height) in [(16, 16), (48, 48), (80, 80), (96, 64), (144, 16), (40, 24), (8, 8)] {
            let images = try run(pipeline, width: width, height: height)
            XCTAssertEqual(images.shape, [1, 3, height, width])
            XCTAssertEqual(try images.nonFiniteCount(), 0, "\(width)×\(height)")
        }
    }

    func testSizesOffTheUnitAreRefusedInPixels() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.tiny)
        for (width, height) in [(4, 8), (8, 12), (0, 8), (-8, 8), (20_000, 8)] {
            XCTAssertThrowsError(try run(pipeline, width: width, height: height)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("multiple of 8 pixels"), text)
                XCTAssertTrue(text.contains("\(width)") || text.contains("\(height)"), text)
            }
        }
    }
}
