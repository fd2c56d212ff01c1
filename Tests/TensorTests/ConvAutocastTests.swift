import Tensor
import XCTest

/// A bf16 activation through an f32 or f16 convolution weight computes in bf16 (CPU autocast's
/// rule; Diffusers' bf16 load of an f16 checkpoint): the same bits as converting the weight
/// first, and the result is bf16.
final class ConvAutocastTests: XCTestCase {
    func testBF16InputWithF32WeightComputesInBF16() throws {
        try checkBF16Input(weightDType: .f32)
    }

    /// An SDXL fp16 checkpoint run in bf16: its convolutions were f32 with an f32 output,
    /// the weight converted on every call.
    func testBF16InputWithF16WeightComputesInBF16() throws {
        try checkBF16Input(weightDType: .f16)
    }

    /// A 1×1 kernel, whose packed layout can be the plain one: the weight is still converted.
    func testBF16InputWithF16PointwiseWeight() throws {
        let x = try Tensor((0..<(1 * 8 * 4 * 4)).map { Float($0 % 13) / 13 - 0.5 }, shape: [1, 8, 4, 4], dtype: .bf16)
        let weight = try Tensor((0..<(4 * 8)).map { Float($0 % 7) / 7 - 0.5 }, shape: [4, 8, 1, 1], dtype: .f16)
        let mixed = try x.conv2d(weight: weight, bias: nil, stride: 1, padding: 0)
        XCTAssertEqual(mixed.dtype, .bf16)
        XCTAssertTrue(try mixed.bytes() == x.conv2d(weight: weight.to(.bf16), bias: nil, stride: 1, padding: 0).bytes())
    }

    private func checkBF16Input(weightDType: DType) throws {
        let x = try Tensor((0..<(2 * 8 * 6 * 5)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }, shape: [2, 8, 6, 5], dtype: .bf16)
        let weight = try Tensor((0..<(16 * 8 * 9)).map { Float(($0 * 104729) % 2001) / 4000 - 0.25 }, shape: [16, 8, 3, 3], dtype: weightDType)
        let bias = try Tensor((0..<16).map { Float($0) / 16 }, shape: [16], dtype: .bf16)
        for input in [x, try x.contiguous(.channelsLast)] {
            let mixed = try input.conv2d(weight: weight, bias: bias, stride: 1, padding: 1)
            let converted = try input.conv2d(weight: weight.to(.bf16), bias: bias, stride: 1, padding: 1)
            XCTAssertEqual(mixed.dtype, .bf16)
            XCTAssertTrue(try mixed.bytes() == converted.bytes(), "\(input.memoryFormat)")
        }
    }
}
