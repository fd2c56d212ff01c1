import Foundation
import Images
import Tensor
import XCTest

/// Image ↔ tensor conversions against Diffusers' VaeImageProcessor, and resizing against Pillow.
final class VaeImageProcessorTests: XCTestCase {
    func testResizeMatchesPillowByteForByte() throws {
        let manifest = try XCTUnwrap(try ImageFixtures.json("resize/manifest.json") as? [String: Any])
        let source = try XCTUnwrap(manifest["source"] as? [String: Int])
        let image = try Image(width: try XCTUnwrap(source["width"]), height: try XCTUnwrap(source["height"]),
                              pixels: try ImageFixtures.bytes("resize/source.rgb"))
        let cases = try XCTUnwrap(manifest["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 21)
        for item in cases {
            let name = try XCTUnwrap(item["name"] as? String)
            let filter = try XCTUnwrap(ResampleFilter(rawValue: try XCTUnwrap(item["filter"] as? String)))
            let width = try XCTUnwrap(item["width"] as? Int), height = try XCTUnwrap(item["height"] as? Int)
            let resized = try image.resized(width: width, height: height, filter: filter)
            XCTAssertEqual(resized.width, width)
            XCTAssertEqual(resized.height, height)
            XCTAssertNil(firstDifference(resized.pixels, try ImageFixtures.bytes("resize/\(name).rgb"), width: width), name)
        }
        XCTAssertEqual(try image.resized(width: image.width, height: image.height), image)
        XCTAssertThrowsError(try image.resized(width: 0, height: 4))
        XCTAssertThrowsError(try image.resized(width: 1 << 20, height: 1 << 20))
        XCTAssertThrowsError(try VaeImageProcessor().preprocess(image, width: 1 << 40, height: 8))
    }

    func testPreprocessMatchesDiffusers() throws {
        let manifest = try XCTUnwrap(try ImageFixtures.json("processor/manifest.json") as? [String: Any])
        let cases = try XCTUnwrap(manifest["preprocess"] as? [[String: Any]])
        for item in cases {
            let name = try XCTUnwrap(item["name"] as? String)
            let image = try Image(width: try XCTUnwrap(item["width"] as? Int), height: try XCTUnwrap(item["height"] as? Int),
                                  pixels: try ImageFixtures.bytes("processor/\(name).rgb"))
            let expected = try ImageFixtures.npyFloat32("processor/\(name).npy")
            let tensor = try VaeImageProcessor().preprocess(image)
            XCTAssertEqual(tensor.shape, expected.shape, name)
            XCTAssertEqual(tensor.dtype, .f32)
            XCTAssertEqual(try tensor.floats(), expected.values, "\(name): must be bit-identical")
        }
    }

    func testPreprocessFormulaAndBatch() throws {
        let a = try Image(width: 8, height: 16, red: 0, green: 128, blue: 255)
        let b = try Image(width: 8, height: 16, red: 51, green: 1, blue: 254)
        let tensor = try VaeImageProcessor().preprocess([a, b])
        XCTAssertEqual(tensor.shape, [2, 3, 16, 8])
        let values = try tensor.floats()
        let plane = 16 * 8
        for (batch, image) in [a, b].enumerated() {
            for c in 0..<3 {
                let byte = image.pixels[c]
                let x = Float(byte) / 255   // numpy: astype(float32) / 255.0, then 2x − 1
                XCTAssertEqual(values[(batch * 3 + c) * plane + 17], 2 * x - 1)
            }
        }
        XCTAssertEqual(values[0], -1)
        XCTAssertEqual(values[2 * plane], 1)
        let unnormalised = try VaeImageProcessor(normalize: false).preprocess(a)
        XCTAssertEqual(try unnormalised.floats()[plane], Float(128) / 255)
    }

    func testSizeMustBeAMultipleOfEightWithoutResizing() throws {
        let strict = VaeImageProcessor(resample: nil)
        let odd = try Image(width: 20, height: 16, red: 1, green: 2, blue: 3)
        XCTAssertThrowsError(try strict.preprocess(odd)) {
            XCTAssertEqual($0 as? ImageError, .sizeNotMultiple(width: 20, height: 16, multiple: 8))
            XCTAssert("\($0)".contains("20×16"))
        }
        XCTAssertEqual(try strict.preprocess(try Image(width: 24, height: 16, red: 0, green: 0, blue: 0)).shape, [1, 3, 16, 24])
        // Too small to round down to a multiple of 8 at all.
        XCTAssertThrowsError(try VaeImageProcessor().preprocess(try Image(width: 7, height: 30, red: 0, green: 0, blue: 0))) {
            XCTAssertEqual($0 as? ImageError, .sizeNotMultiple(width: 7, height: 30, multiple: 8))
        }
        // With resizing (the default) a 20×16 image becomes 16×16; a requested size rounds down.
        XCTAssertEqual(try VaeImageProcessor().preprocess(odd).shape, [1, 3, 16, 16])
        XCTAssertEqual(try VaeImageProcessor().preprocess(odd, width: 35, height: 41).shape, [1, 3, 40, 32])
        XCTAssertThrowsError(try VaeImageProcessor().preprocess([Image]()))
    }

    func testPostprocessMatchesDiffusers() throws {
        let input = try ImageFixtures.npyFloat32("processor/post_input.npy")
        let expected = try ImageFixtures.bytes("processor/post_expected.rgb")
        let tensor = try Tensor(input.values, shape: input.shape)
        let images = try VaeImageProcessor().postprocess(tensor)
        XCTAssertEqual(images.count, 2)
        XCTAssertEqual(images.map(\.width), [7, 7])
        XCTAssertEqual(images.map(\.height), [5, 5])
        XCTAssertNil(firstDifference(images.flatMap(\.pixels), expected, width: 7))
        // Half precision input goes through the same formula.
        let half = try VaeImageProcessor().postprocess(try tensor.to(.bf16))
        XCTAssertEqual(half.count, 2)
    }

    func testPostprocessFormula() throws {
        // (x·0.5 + 0.5) clamped, × 255, rounded half to even; NaN → 0.
        let values: [Float] = [-1, 1, 0, -3, 3, .nan, 0.5, -0.5, -0.2, 0]
        let tensor = try Tensor(values + [Float](repeating: 0, count: 2), shape: [1, 3, 2, 2])
        let pixels = try XCTUnwrap(try VaeImageProcessor().postprocess(tensor).first).pixels
        // CHW → HWC: pixel p channel c is values[c * 4 + p].
        func at(_ i: Int) -> UInt8 { pixels[(i % 4) * 3 + i / 4] }
        let expected: [UInt8] = [0, 255, 128, 0, 255, 0, 191, 64, 102, 128]
        for (i, value) in expected.enumerated() { XCTAssertEqual(at(i), value, "value \(values[i])") }
        XCTAssertThrowsError(try VaeImageProcessor().postprocess(try Tensor([0, 0, 0], shape: [3, 1, 1])))
        XCTAssertThrowsError(try VaeImageProcessor().postprocess(try Tensor([0, 0, 0, 0], shape: [1, 4, 1, 1])))
    }

    func testTensorRoundTripIsLossless() throws {
        let image = try PNGRoundTripTests.sample(width: 24, height: 16, seed: 11)
        let processor = VaeImageProcessor()
        XCTAssertEqual(try processor.postprocess(try processor.preprocess(image)), [image])
    }
}
