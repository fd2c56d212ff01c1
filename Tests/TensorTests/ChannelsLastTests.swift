import Tensor
import TestSupport
import XCTest

/// Channels-last (NHWC) tensors: the layout-aware kernels give the values of the contiguous
/// path and keep the layout, so that consecutive convolutions need no reorders.
final class ChannelsLastTests: XCTestCase {
    func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 + seed) * 7919) % 2001) / 1000 - 1 }
    }

    func tensor(_ shape: [Int], seed: Int = 0, dtype: DType = .f32) throws -> Tensor {
        try Tensor(values(shape.reduce(1, *), seed: seed), shape: shape, dtype: dtype)
    }

    func testConversionKeepsValuesAndSetsStrides() throws {
        let x = try tensor([2, 3, 4, 5])
        let nhwc = try x.contiguous(.channelsLast)
        XCTAssertTrue(nhwc.isChannelsLast)
        XCTAssertFalse(nhwc.isContiguous)
        XCTAssertEqual(nhwc.memoryFormat, .channelsLast)
        XCTAssertEqual(nhwc.strides, [60, 1, 15, 3])
        XCTAssertEqual(try nhwc.floats(), try x.floats())
        XCTAssertEqual(try nhwc.contiguous().floats(), try x.floats())
        XCTAssertTrue(try nhwc.contiguous(.channelsLast).storage === nhwc.storage, "already channels-last: no copy")
        XCTAssertThrowsError(try Tensor.zeros([2, 3, 4]).contiguous(.channelsLast))
    }

    func testConvolutionReadsAndWritesNHWC() throws {
        for (dtype, tolerance) in [(DType.f32, 1e-6), (.bf16, 1e-2)] {
            let x = try tensor([2, 8, 9, 7], dtype: dtype)
            let weight = try tensor([16, 8, 3, 3], seed: 5, dtype: dtype), bias = try tensor([16], seed: 9, dtype: dtype)
            for (stride, padding) in [(1, ConvPadding(1)), (2, ConvPadding(top: 0, left: 0, bottom: 1, right: 1))] {
                let plain = try x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
                let nhwc = try x.contiguous(.channelsLast).conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
                XCTAssertEqual(nhwc.memoryFormat, .channelsLast, "\(dtype) stride \(stride): the output stays channels-last")
                XCTAssertLessThan(try relativeL2(nhwc, plain), tolerance, "\(dtype) stride \(stride)")
            }
        }
    }

    func testGroupNormMatchesTheContiguousKernel() throws {
        for dtype in [DType.f32, .bf16] {
            let x = try tensor([2, 32, 6, 5], dtype: dtype)
            let weight = try tensor([32], seed: 3), bias = try tensor([32], seed: 4)
            let plain = try x.groupNorm(groups: 8, weight: weight, bias: bias, eps: 1e-5)
            let nhwc = try x.contiguous(.channelsLast).groupNorm(groups: 8, weight: weight, bias: bias, eps: 1e-5)
            XCTAssertEqual(nhwc.memoryFormat, .channelsLast)
            XCTAssertLessThan(try relativeL2(nhwc, plain), dtype == .f32 ? 1e-6 : 1e-2, "\(dtype)")
        }
    }

    func testElementwiseConcatAndUpsampleKeepTheLayout() throws {
        let a = try tensor([2, 4, 3, 5]), b = try tensor([2, 4, 3, 5], seed: 7)
        let t = try tensor([2, 4, 1, 1], seed: 11)
        let (na, nb) = (try a.contiguous(.channelsLast), try b.contiguous(.channelsLast))
        let cases: [(String, Tensor, Tensor)] = [
            ("silu", try na.silu(), try a.silu()),
            ("affine", try na * 0.5 + 1, try a * 0.5 + 1),
            ("clamp", try na.clamped(to: -0.5...0.5), try a.clamped(to: -0.5...0.5)),
            ("add", try na + nb, try a + b),
            ("broadcast add", try na + t, try a + t),
            ("concat", try Tensor.concat([na, nb], axis: 1), try Tensor.concat([a, b], axis: 1)),
            ("upsample", try na.upsampleNearest2x(), try a.upsampleNearest2x()),
        ]
        for (name, nhwc, plain) in cases {
            XCTAssertEqual(nhwc.memoryFormat, .channelsLast, "\(name) keeps channels-last")
            XCTAssertEqual(try nhwc.floats(), try plain.floats(), "\(name)")
        }
        // A contiguous operand of the full size decides: the result is contiguous.
        XCTAssertTrue(try (na + b).isContiguous)
    }
}
