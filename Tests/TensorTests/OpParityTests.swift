import NN
import Tensor
import TestSupport
import XCTest

/// Each op against PyTorch's output for the same inputs (Fixtures/ops, f32, tolerance 1e-4
/// relative L2 as DESIGN.md's numerics contract asks of modules).
final class OpParityTests: XCTestCase {
    func testPointwise() throws {
        let f = try Fixtures.file("ops/elementwise.safetensors")
        let unary: [(String, (Tensor) throws -> Tensor)] = [
            ("silu", { try $0.silu() }), ("gelu", { try $0.gelu() }), ("gelu_tanh", { try $0.gelu(.tanh) }),
            ("quick_gelu", { try $0.quickGelu() }), ("sigmoid", { try $0.sigmoid() }),
            ("tanh", { try $0.tanh() }), ("exp", { try $0.exp() }),
        ]
        for (name, op) in unary {
            try assertClose(op(f.tensor(named: "\(name).x")), f.tensor(named: "\(name).out"), tolerance: 1e-6, name)
        }
        try assertClose(f.tensor(named: "add_bcast.a") + f.tensor(named: "add_bcast.b"), f.tensor(named: "add_bcast.out"), tolerance: 1e-7, "add")
        try assertClose(f.tensor(named: "mul_bcast.a") * f.tensor(named: "mul_bcast.b"), f.tensor(named: "mul_bcast.out"), tolerance: 1e-7, "mul")
        try assertClose(f.tensor(named: "div_bcast.a") / f.tensor(named: "div_bcast.b"), f.tensor(named: "div_bcast.out"), tolerance: 1e-7, "div")
        let scalar = try Fixtures.parameters(f, "sub_scalar")["scalar"] as? Double ?? 0
        try assertClose(f.tensor(named: "sub_scalar.x") - Float(scalar), f.tensor(named: "sub_scalar.out"), tolerance: 1e-7, "sub scalar")
    }

    func testSoftmax() throws {
        let f = try Fixtures.file("ops/elementwise.safetensors")
        try assertClose(f.tensor(named: "softmax_last.x").softmax(axis: -1), f.tensor(named: "softmax_last.out"), tolerance: 1e-6, "softmax last")
        try assertClose(f.tensor(named: "softmax_dim1.x").softmax(axis: 1), f.tensor(named: "softmax_dim1.out"), tolerance: 1e-6, "softmax dim 1")
    }

    func testShapeOps() throws {
        let f = try Fixtures.file("ops/elementwise.safetensors")
        let cat = try Tensor.concat([f.tensor(named: "concat_dim1.a"), f.tensor(named: "concat_dim1.b")], axis: 1)
        XCTAssertEqual(try cat.floats(), try f.tensor(named: "concat_dim1.out").floats())
        XCTAssertEqual(try f.tensor(named: "upsample_nearest2x.x").upsampleNearest2x().floats(),
                       try f.tensor(named: "upsample_nearest2x.out").floats())
        // F.interpolate(size=...) in either memory format, bf16 too (nearest copies values).
        for (h, w) in [(9, 13), (11, 3), (5, 7), (4, 5)] {
            let x = try f.tensor(named: "upsample_nearest_\(h)x\(w).x"), expected = try f.tensor(named: "upsample_nearest_\(h)x\(w).out")
            for (input, reference) in [(x, expected), (try x.contiguous(.channelsLast), expected), (try x.to(.bf16), try expected.to(.bf16))] {
                let out = try input.upsampleNearest(height: h, width: w)
                XCTAssertEqual(out.shape, expected.shape)
                XCTAssertEqual(out.memoryFormat, input.memoryFormat)
                XCTAssertEqual(try out.floats(), try reference.floats(), "\(h)×\(w) \(input.memoryFormat) \(input.dtype)")
            }
        }
        XCTAssertThrowsError(try f.tensor(named: "upsample_nearest2x.x").upsampleNearest(height: 0, width: 3))
        let embedded = try Tensor.embedding(f.tensor(named: "embedding.ids"), weight: f.tensor(named: "embedding.weight"))
        XCTAssertEqual(embedded.shape, try f.tensor(named: "embedding.out").shape)
        XCTAssertEqual(try embedded.floats(), try f.tensor(named: "embedding.out").floats())
        let permuted = try f.tensor(named: "permute_contiguous.x").permuted(0, 2, 3, 1)
        XCTAssertFalse(permuted.isContiguous)
        XCTAssertEqual(try permuted.contiguous().floats(), try f.tensor(named: "permute_contiguous.out").floats())
        let sliced = try f.tensor(named: "transpose_slice.x").sliced(axis: 1, 1..<3).transposed(1, 2)
        XCTAssertEqual(try sliced.contiguous().floats(), try f.tensor(named: "transpose_slice.out").floats())
        let expanded = try f.tensor(named: "expand.x").expanded(to: [2, 3, 4, 5])
        XCTAssertEqual(try expanded.contiguous().floats(), try f.tensor(named: "expand.out").floats())
    }

    func testTimestepEmbedding() throws {
        let f = try Fixtures.file("ops/elementwise.safetensors")
        for case_ in ["timestep_embedding_a", "timestep_embedding_b", "timestep_embedding_c"] {
            let p = try Fixtures.parameters(f, case_)
            let ours = try timestepEmbedding(
                f.tensor(named: "\(case_).timesteps"), dimension: p["embedding_dim"] as? Int ?? 0,
                flipSinToCos: p["flip_sin_to_cos"] as? Bool ?? false,
                downscaleFreqShift: Float(p["downscale_freq_shift"] as? Double ?? 1),
                scale: Float(p["scale"] as? Double ?? 1), maxPeriod: Float(p["max_period"] as? Double ?? 10000))
            try assertClose(ours, f.tensor(named: "\(case_).out"), tolerance: 1e-5, case_)
        }
    }

    func testNorms() throws {
        let f = try Fixtures.file("ops/norms.safetensors")
        try assertClose(f.tensor(named: "group_norm.x").groupNorm(groups: 8, weight: f.tensor(named: "group_norm.weight"),
                                                                   bias: f.tensor(named: "group_norm.bias"), eps: 1e-6),
                        f.tensor(named: "group_norm.out"), tolerance: 1e-6, "group norm")
        try assertClose(f.tensor(named: "group_norm_b.x").groupNorm(groups: 32, weight: nil, bias: nil, eps: 1e-5),
                        f.tensor(named: "group_norm_b.out"), tolerance: 1e-6, "group norm b")
        try assertClose(f.tensor(named: "layer_norm.x").layerNorm(weight: f.tensor(named: "layer_norm.weight"),
                                                                   bias: f.tensor(named: "layer_norm.bias"), eps: 1e-5),
                        f.tensor(named: "layer_norm.out"), tolerance: 1e-6, "layer norm")
        try assertClose(f.tensor(named: "rms_norm.x").rmsNorm(weight: f.tensor(named: "rms_norm.weight"), eps: 1e-6),
                        f.tensor(named: "rms_norm.out"), tolerance: 1e-6, "rms norm")
    }

    func testLinearAndMatmul() throws {
        let f = try Fixtures.file("ops/linalg.safetensors")
        try assertClose(f.tensor(named: "linear.x").linear(weight: f.tensor(named: "linear.weight"), bias: f.tensor(named: "linear.bias")),
                        f.tensor(named: "linear.out"), tolerance: 1e-6, "linear")
        try assertClose(f.tensor(named: "linear_nobias.x").linear(weight: f.tensor(named: "linear_nobias.weight")),
                        f.tensor(named: "linear_nobias.out"), tolerance: 1e-6, "linear without bias")
        try assertClose(f.tensor(named: "matmul_batched.a").matmul(f.tensor(named: "matmul_batched.b")),
                        f.tensor(named: "matmul_batched.out"), tolerance: 1e-6, "batched matmul")
        try assertClose(f.tensor(named: "matmul_bcast.a").matmul(f.tensor(named: "matmul_bcast.b")),
                        f.tensor(named: "matmul_bcast.out"), tolerance: 1e-6, "broadcast matmul")
        try assertClose(f.tensor(named: "matmul_transposed.a").matmul(f.tensor(named: "matmul_transposed.b").transposed(-1, -2)),
                        f.tensor(named: "matmul_transposed.out"), tolerance: 1e-6, "matmul with a transposed view")
    }

    func testConvolutions() throws {
        let f = try Fixtures.file("ops/linalg.safetensors")
        for case_ in ["conv_s1p1", "conv_s2p1", "conv_1x1", "conv_p0", "conv_nobias"] {
            let p = try Fixtures.parameters(f, case_)
            let bias = (p["bias"] as? Bool ?? true) ? try f.tensor(named: "\(case_).bias") : nil
            let out = try f.tensor(named: "\(case_).x").conv2d(weight: f.tensor(named: "\(case_).weight"), bias: bias,
                                                              stride: p["stride"] as? Int ?? 1, padding: p["padding"] as? Int ?? 0)
            try assertClose(out, f.tensor(named: "\(case_).out"), tolerance: 1e-6, case_)
        }
    }

    func testAttentionBothKernels() throws {
        let f = try Fixtures.file("ops/attention.safetensors")
        for kernel in [AttentionKernel.reference, .memoryEfficient, .auto] {
            for case_ in ["sdpa", "sdpa_mask", "sdpa_scale", "sdpa_d40", "sdpa_causal"] {
                let p = try Fixtures.parameters(f, case_)
                let out = try scaledDotProductAttention(
                    query: f.tensor(named: "\(case_).q"), key: f.tensor(named: "\(case_).k"), value: f.tensor(named: "\(case_).v"),
                    mask: case_ == "sdpa_mask" ? try f.tensor(named: "sdpa_mask.mask") : nil,
                    scale: (p["scale"] as? Double).map { Float($0) }, isCausal: p["is_causal"] as? Bool ?? false, kernel: kernel)
                try assertClose(out, f.tensor(named: "\(case_).out"), tolerance: 1e-5, "\(case_) \(kernel)")
            }
        }
    }

    /// bf16 compute (f32 accumulation): judged against PyTorch's bf16 output and against the
    /// f32 computation on the same bf16 inputs. One bf16 rounding of the output is 2^-9 relative
    /// (≈ 2e-3); we allow 1e-2 to cover accumulation-order differences in the last bit.
    func testBF16Ops() throws {
        let f = try Fixtures.file("ops/bf16.safetensors")
        func check(_ name: String, _ ours: Tensor) throws {
            XCTAssertEqual(ours.dtype, .bf16, name)
            try assertClose(ours, f.tensor(named: "\(name).out"), tolerance: 1e-2, "\(name) vs PyTorch bf16")
            try assertClose(ours, f.tensor(named: "\(name).out_f32ref"), tolerance: 1e-2, "\(name) vs f32 on bf16 inputs")
        }
        try check("linear", f.tensor(named: "linear.x").linear(weight: f.tensor(named: "linear.weight"), bias: f.tensor(named: "linear.bias")))
        try check("matmul_batched", f.tensor(named: "matmul_batched.a").matmul(f.tensor(named: "matmul_batched.b")))
        try check("conv_s1p1", f.tensor(named: "conv_s1p1.x").conv2d(weight: f.tensor(named: "conv_s1p1.weight"),
                                                                    bias: f.tensor(named: "conv_s1p1.bias"), padding: 1))
        try check("group_norm", f.tensor(named: "group_norm.x").groupNorm(groups: 8, weight: f.tensor(named: "group_norm.weight"),
                                                                         bias: f.tensor(named: "group_norm.bias"), eps: 1e-6))
        try check("silu", f.tensor(named: "silu.x").silu())
        for kernel in [AttentionKernel.reference, .memoryEfficient] {
            try check("sdpa_d40", scaledDotProductAttention(query: f.tensor(named: "sdpa_d40.q"), key: f.tensor(named: "sdpa_d40.k"),
                                                            value: f.tensor(named: "sdpa_d40.v"), kernel: kernel))
        }
    }

    /// f16 has no oneDNN kernels on this CPU: products compute in f32 and return f16, as
    /// PyTorch returns f16 for f16 operands. Judged against the f32 fixture at f16 precision.
    func testF16ProductsReturnF16() throws {
        let f = try Fixtures.file("ops/linalg.safetensors")
        func half(_ name: String) throws -> Tensor { try f.tensor(named: name).to(.f16) }
        let linear = try half("linear.x").linear(weight: half("linear.weight"), bias: half("linear.bias"))
        let matmul = try half("matmul_batched.a").matmul(half("matmul_batched.b"))
        let conv = try half("conv_s1p1.x").conv2d(weight: half("conv_s1p1.weight"), bias: half("conv_s1p1.bias"), padding: 1)
        let attention = try scaledDotProductAttention(query: half("matmul_batched.a").unsqueezed(0),
                                                      key: half("matmul_batched.a").unsqueezed(0),
                                                      value: half("matmul_batched.a").unsqueezed(0))
        for (name, t) in [("linear", linear), ("matmul_batched", matmul), ("conv_s1p1", conv)] {
            XCTAssertEqual(t.dtype, .f16, name)
            try assertClose(t, f.tensor(named: "\(name).out"), tolerance: 5e-3, "\(name) in f16")
        }
        XCTAssertEqual(attention.dtype, .f16)
    }
}

/// The fused `x * activation(gate)` gives exactly the numbers of the two separate operations,
/// in f32 and bf16 (where the activation is rounded to bf16 first), on strided halves as GEGLU
/// passes them and with broadcasting.
final class GatedActivationTests: XCTestCase {
    func testSameNumbersAsTheSeparateOperations() throws {
        let projected = try Tensor((0..<(3 * 5 * 64)).map { Float(($0 * 37) % 97) / 97 * 8 - 4 }, shape: [3, 5, 64])
        for dtype in [DType.f32, .bf16] {
            let halves = try projected.to(dtype).chunked(2, axis: -1)
            for activation in [UnaryOp.gelu, .silu, .geluTanh] {
                let fused = try halves[0].gated(by: halves[1], activation: activation)
                let separate = try halves[0] * halves[1].applying(activation)
                XCTAssertEqual(fused.dtype, dtype)
                XCTAssertEqual(try fused.floats(), try separate.floats(), "\(dtype) \(activation)")
            }
            let row = try Tensor((0..<32).map { Float($0) / 8 - 2 }, shape: [32]).to(dtype)
            XCTAssertEqual(try halves[0].gated(by: row, activation: .gelu).floats(), try (halves[0] * row.gelu()).floats(), "broadcast gate")
        }
        XCTAssertThrowsError(try projected.gated(by: try Tensor([1, 2, 3], shape: [3]), activation: .gelu))
    }
}

/// Channels-last GroupNorm (per-channel sums over the pixels, combined per group) agrees with
/// the NCHW kernel, also where the mean dwarfs the spread.
final class GroupNormMomentsTests: XCTestCase {
    func testChannelsLastAgreesWithNCHW() throws {
        for offset: Float in [0, 1000] {
            let values: [Float] = (0..<(2 * 32 * 9 * 7)).map { (i: Int) -> Float in offset + Float((i * 37) % 101) / 101 - 0.5 }
            let x = try Tensor(values, shape: [2, 32, 9, 7])
            let weight = try Tensor((0..<32).map { 1 + Float($0) / 32 }, shape: [32])
            let bias = try Tensor((0..<32).map { Float($0) / 64 }, shape: [32])
            let nchw = try x.groupNorm(groups: 8, weight: weight, bias: bias, eps: 1e-6)
            let nhwc = try x.contiguous(MemoryFormat.channelsLast).groupNorm(groups: 8, weight: weight, bias: bias, eps: 1e-6)
            XCTAssertEqual(nhwc.memoryFormat, MemoryFormat.channelsLast)
            XCTAssertLessThan(relativeL2(try nhwc.floats(), try nchw.floats()), 1e-5, "offset \(offset)")
        }
    }
}
