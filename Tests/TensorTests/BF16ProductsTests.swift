import Tensor
import XCTest

/// bf16 products (`BF16ProductKernels`): either kernel sums exact products in f32 and rounds
/// once, so a bf16 product is the f32 product of the same values rounded to bf16 — bit for bit
/// on the f32 route, within one bf16 rounding (a different summation order) on oneDNN's.
final class BF16ProductsTests: XCTestCase {
    func testTheChoiceFollowsTheCPU() {
        XCTAssertEqual(BF16ProductKernels.preferred(amx: true, avx512BF16: true, vendor: "GenuineIntel"), .native)
        XCTAssertEqual(BF16ProductKernels.preferred(amx: false, avx512BF16: true, vendor: "GenuineIntel"), .f32)
        XCTAssertEqual(BF16ProductKernels.preferred(amx: false, avx512BF16: true, vendor: "AuthenticAMD"), .native)
        XCTAssertEqual(BF16ProductKernels.preferred(amx: false, avx512BF16: false, vendor: "AuthenticAMD"), .f32)
        XCTAssertEqual(BF16ProductKernels.preferred(amx: false, avx512BF16: false, vendor: nil), .f32)
    }

    private func values(_ count: Int, _ seed: Int) -> [Float] {
        (0..<count).map { Float((($0 + seed) * 7919) % 2003) / 1001 - 1 }
    }

    /// `bf16` against `f32 → bf16`: equal on the f32 route; otherwise each element within one
    /// bf16 step of the magnitude of the products it sums.
    private func check(_ bf16: Tensor, _ reference: Tensor, scale: Float, _ what: String) throws {
        XCTAssertEqual(bf16.dtype, .bf16, what)
        if BF16ProductKernels.current == .f32 {
            XCTAssertTrue(try bf16.bytes() == reference.to(.bf16).bytes(), what)
        } else {
            let a = try bf16.floats(), b = try reference.floats()
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, scale / 128, what)
        }
    }

    func testLinearMatmulAndConvolution() throws {
        let x = try Tensor(values(2 * 5 * 48, 1), shape: [2, 5, 48], dtype: .bf16)
        let w = try Tensor(values(24 * 48, 2), shape: [24, 48], dtype: .bf16)
        let bias = try Tensor(values(24, 3), shape: [24], dtype: .bf16)
        try check(x.linear(weight: w, bias: bias), x.to(.f32).linear(weight: w.to(.f32), bias: bias.to(.f32)), scale: 48, "linear")

        // A weight converted a band of rows at a time (200 outputs in bands of 64): the same.
        let wide = try Tensor(values(200 * 48, 7), shape: [200, 48], dtype: .bf16), wideBias = try Tensor(values(200, 8), shape: [200], dtype: .bf16)
        let chunk = CPUBackend.bf16WeightChunkBytes
        CPUBackend.bf16WeightChunkBytes = 64 * 48 * 4
        defer { CPUBackend.bf16WeightChunkBytes = chunk }
        try check(x.linear(weight: wide, bias: wideBias), x.to(.f32).linear(weight: wide.to(.f32), bias: wideBias.to(.f32)), scale: 48, "banded linear")

        let b = try Tensor(values(2 * 48 * 7, 4), shape: [2, 48, 7], dtype: .bf16)
        try check(x.matmul(b), x.to(.f32).matmul(b.to(.f32)), scale: 48, "batched matmul")

        let image = try Tensor(values(1 * 8 * 6 * 5, 5), shape: [1, 8, 6, 5], dtype: .bf16)
        let kernel = try Tensor(values(4 * 8 * 9, 6), shape: [4, 8, 3, 3])  // f32: autocast rounds it to bf16
        for input in [image, try image.contiguous(.channelsLast)] {
            let out = try input.conv2d(weight: kernel, bias: nil, stride: 1, padding: 1)
            let reference = try image.to(.f32).conv2d(weight: kernel.to(.bf16).to(.f32), bias: nil, stride: 1, padding: 1)
            XCTAssertEqual(out.memoryFormat, input.memoryFormat)
            try check(out.contiguous(), reference, scale: 72, "conv2d \(input.memoryFormat)")
        }
    }
}
