import Tensor
import XCTest

/// A bf16 activation through an f32 convolution weight computes in bf16 (CPU autocast's
/// rule): the same bits as converting the weight first, and the result is bf16.
final class ConvAutocastTests: XCTestCase {
    func testBF16InputWithF32WeightComputesInBF16() throws {
        let x = try Tensor((0..<(2 * 8 * 6 * 5)).map { Float(($0 * 7919) % 2001) / 1000 - 1 }, shape: [2, 8, 6, 5], dtype: .bf16)
        let weight = try Tensor((0..<(16 * 8 * 9)).map { Float(($0 * 104729) % 2001) / 4000 - 0.25 }, shape: [16, 8, 3, 3])
        let bias = try Tensor((0..<16).map { Float($0) / 16 }, shape: [16], dtype: .bf16)
        for input in [x, try x.contiguous(.channelsLast)] {
            let mixed = try input.conv2d(weight: weight, bias: bias, stride: 1, padding: 1)
            let converted = try input.conv2d(weight: weight.to(.bf16), bias: bias, stride: 1, padding: 1)
            XCTAssertEqual(mixed.dtype, .bf16)
            XCTAssertEqual(try mixed.bytes(), try converted.bytes(), "\(input.memoryFormat)")
        }
    }
}
