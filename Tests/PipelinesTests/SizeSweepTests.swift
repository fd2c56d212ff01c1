import Foundation
import Pipelines
import Tensor
import TestSupport
import XCTest

/// The pipelines at a sweep of image sizes: every multiple of the size unit gives a finite
/// image of that size, channels-last (the default) agrees with NCHW, and sizes off the unit are
/// refused in pixels before anything runs. The tiny pipelines trapped at 48×48, 80×80 and 96×64
/// (odd pixel counts at the UNet's lowest level) before the work splits were balanced.
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
        XCTAssertEqual(pipeline.sizeMultiple, 4, "VAE ×2, UNet ×2")
        let sizes = [(4, 4), (8, 8), (12, 12), (20, 20), (36, 36), (44, 44), (48, 48), (52, 52), (68, 68), (80, 80),
                     (96, 64), (64, 96), (100, 12), (12, 100), (132, 36)]
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
        XCTAssertEqual(pipeline.sizeMultiple, 16, "VAE ×4, UNet ×4")
        for (width, height) in [(16, 16), (48, 48), (80, 80), (96, 64), (144, 16)] {
            let images = try run(pipeline, width: width, height: height)
            XCTAssertEqual(images.shape, [1, 3, height, width])
            XCTAssertEqual(try images.nonFiniteCount(), 0, "\(width)×\(height)")
        }
    }

    func testSizesOffTheUnitAreRefusedInPixels() throws {
        let pipeline = try StableDiffusionPipeline(folder: Self.tiny)
        for (width, height) in [(6, 8), (8, 10), (0, 8), (-4, 8), (20_000, 8)] {
            XCTAssertThrowsError(try run(pipeline, width: width, height: height)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("multiple of 4 pixels"), text)
                XCTAssertTrue(text.contains("\(width)") || text.contains("\(height)"), text)
            }
        }
    }
}
