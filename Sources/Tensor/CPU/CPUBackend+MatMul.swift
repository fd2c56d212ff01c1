import CDNNL
import Foundation

extension CPUBackend {
    /// The dtype a product computes in: bf16 when both operands are bf16, else f32 (oneDNN
    /// has no f16 kernels on CPUs without AVX-512 FP16). `resultType` says what it returns.
    static func productType(_ a: DType, _ b: DType) -> DType { a == .bf16 && b == .bf16 ? .bf16 : .f32 }

    public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let device = try CPUBackend.sameDevice(a, b, op: "matmul")
        try CPUBackend.requireCompute(a, "matmul"); try CPUBackend.requireCompute(b, "matmul")
        guard a.rank >= 2, b.rank >= 2 else {
            throw TensorError.invalidArgument("matmul needs operands of rank 2 or more, got \(a.shape) and \(b.shape)")
        }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        guard b.shape[b.rank - 2] == k else {
            throw TensorError.shapeMismatch("matmul of \(a.shape) and \(b.shape): inner dimensions \(k) and \(b.shape[b.rank - 2]) differ")
        }
        let dtype = CPUBackend.productType(a.dtype, b.dtype)
        let x = try a.to(dtype).withoutBroadcastStrides(), y = try b.to(dtype).withoutBroadcastStrides()
        let batch = try broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
        let result = CPUBackend.resultType(a.dtype, b.dtype)
        if result != dtype { return try matmul(x, y).to(result) }  // f16: compute in f32
        // bf16 products as f32 ones (`BF16ProductKernels`; oneDNN has no f32 kernel writing bf16).
        if dtype == .bf16 && CPUBackend.bf16ProductsInF32 { return try matmul(x.to(.f32), y.to(.f32)).to(.bf16) }
        let out = try Tensor.empty(batch + [m, n], dtype: dtype, device: device)
        guard out.count > 0 else { return out }
        if k == 0 { memset(out.data, 0, out.byteCount); return out }

        // A plain matrix on the right: fold every leading dim of the left into rows.
        if y.rank == 2, let rows = try? x.reshaped([-1, k]), rows.strides[1] == 1 || rows.strides[0] == 1 {
            try withExtendedLifetime(out) { try gemm(rows, y, bias: nil, into: out.data, dtype: dtype) }
            return out
        }
        let rank = batch.count + 2
        guard rank <= 12 else { throw TensorError.invalidArgument("matmul supports at most 12 dimensions") }
        func padded(_ t: Tensor) -> (dims: [Int], strides: [Int]) {
            let lead = rank - t.rank
            return ([Int](repeating: 1, count: lead) + t.shape, [Int](repeating: 0, count: lead) + t.strides)
        }
        let (ad, as_) = padded(x), (bd, bs) = padded(y)
        let dnnl = try DNNL.get()
        let aMD = try memoryDesc(dims: ad, strides: fixStrides(ad, as_), dtype: dtype)
        let bMD = try memoryDesc(dims: bd, strides: fixStrides(bd, bs), dtype: dtype)
        let cMD = try memoryDesc(dims: out.shape, strides: out.strides, dtype: dtype)
        let key = "matmul|\(ad)|\(as_)|\(bd)|\(bs)|\(dtype)"
        let primitive = try dnnl.primitive(key) { try dnnl.matmulPrimitive(aMD, bMD, cMD) }
        try dnnl.execute(primitive, [(DNNL_ARG_SRC, aMD, x.data), (DNNL_ARG_WEIGHTS, bMD, y.data), (DNNL_ARG_DST, cMD, out.data)],
                         keepAlive: [x, y, out], device: device)
        return out
    }

    public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        let device = try CPUBackend.sameDevice(x, weight, bias, op: "linear")
        try CPUBackend.requireCompute(x, "linear"); try CPUBackend.requireCompute(weight, "linear")
        guard weight.rank == 2, x.rank >= 1, x.shape.last == weight.shape[1] else {
            throw TensorError.shapeMismatch("linear of input \(x.shape) with weight \(weight.shape): last input dimension must equal weight.shape[1]")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.shapeMismatch("linear bias \(bias.shape) does not match \(weight.shape[0]) outputs")
        }
        let dtype = CPUBackend.productType(x.dtype, weight.dtype)
        let result = CPUBackend.resultType(x.dtype, weight.dtype)
        if result != dtype {  // f16: compute in f32
            return try linear(x.to(dtype), weight: weight.to(dtype), bias: bias).to(result)
        }
        // bf16 products as f32 ones (`BF16ProductKernels`), the weights staying bf16 in memory.
        if dtype == .bf16 && CPUBackend.bf16ProductsInF32 { return try linearInF32Chunks(x, weight: weight, bias: bias) }
        let input = try x.to(dtype).withoutBroadcastStrides()
        let outFeatures = weight.shape[0]
        let out = try Tensor.empty(Array(x.shape.dropLast()) + [outFeatures], dtype: dtype, device: device)
        guard out.count > 0 else { return out }
        let rows = try input.reshaped([-1, weight.shape[1]])
        // Weight [out, in] is used transposed: a [in, out] view with swapped strides. Packing it
        // into the layout the primitive picks (format_tag_any, BA16a64b here) measured slower:
        // SD 1.5 UNet linears 1.92-1.95 s a step packed against 1.84-1.85 s in place, plus the
        // packing itself each call (BENCHMARKS.md, oneDNN 3.2 section).
        let wT = try weight.to(dtype).withoutBroadcastStrides().transposed(0, 1)
        try withExtendedLifetime(out) { try gemm(rows, wT, bias: bias, into: out.data, dtype: dtype) }
        return out
    }

    /// Bytes of f32 weight rows a bf16 linear on the f32 route converts at a time
    /// (`linearInF32Chunks`); settable for tests.
    nonisolated(unsafe) public static var bf16WeightChunkBytes = 16 << 20

    /// A bf16 linear as f32 products: the input widened once, then the weight a band of output
    /// rows at a time — converted into one f32 buffer that the GEMM reads while it is still in
    /// cache, the band's f32 result rounded into the bf16 output — instead of an f32 copy of the
    /// whole weight (fresh pages, written and read back from memory) and of the whole result.
    /// Each output element is the same f32 dot product, rounded once.
    func linearInF32Chunks(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        let (n, k) = (weight.shape[0], weight.shape[1])
        let rows = try x.to(.f32).withoutBroadcastStrides().reshaped([-1, k])                   // [M, K] f32
        let m = rows.shape[0]
        let out = try Tensor.empty(Array(x.shape.dropLast()) + [n], dtype: .bf16, device: x.device)
        guard out.count > 0 else { return out }
        let band = min(n, max(64, CPUBackend.bf16WeightChunkBytes / max(4 * k, 1) / 64 * 64))
        let weightBand = try Tensor.empty([band, k], dtype: .f32, device: x.device)               // [band, K]
        let resultBand = try Tensor.empty([m * band], dtype: .f32, device: x.device)
        let source = try weight.contiguous(), output = try out.reshaped([m, n])
        for start in stride(from: 0, to: n, by: band) {
            let width = min(band, n - start)
            let w = width == band ? weightBand : try weightBand.narrowed(axis: 0, start: 0, length: width)
            try w.copyElements(from: source.narrowed(axis: 0, start: start, length: width))
            let result = try resultBand.narrowed(axis: 0, start: 0, length: m * width).reshaped([m, width])
            try withExtendedLifetime((weightBand, resultBand)) {
                try gemm(rows, w.transposed(0, 1), bias: bias?.narrowed(axis: 0, start: start, length: width), into: result.data, dtype: .f32)
            }
            try output.narrowed(axis: 1, start: start, length: width).assign(result)
        }
        return out
    }

    /// out[rows, n] = a[rows, k] @ b[k, n] (+ bias[n]), any 2-D strides, written contiguously.
    func gemm(_ a: Tensor, _ b: Tensor, bias: Tensor?, into out: UnsafeMutableRawPointer, dtype: DType) throws {
        let m = a.shape[0], k = a.shape[1], n = b.shape[1]
        let dnnl = try DNNL.get()
        let aMD = try memoryDesc(dims: [m, k], strides: fixStrides([m, k], a.strides), dtype: dtype)
        let bMD = try memoryDesc(dims: [k, n], strides: fixStrides([k, n], b.strides), dtype: dtype)
        let cMD = try memoryDesc(dims: [m, n], strides: [n, 1], dtype: dtype)
        let biasTensor = try bias.map { try $0.contiguous().to($0.dtype == .bf16 && dtype == .bf16 ? .bf16 : .f32) }
        let biasMD = try biasTensor.map { try memoryDesc(dims: [1, n], strides: [n, 1], dtype: $0.dtype) }
        let key = "gemm|\(m),\(k),\(n)|\(a.strides)|\(b.strides)|\(dtype)|\(biasTensor?.dtype.rawValue ?? "-")"
        let primitive = try dnnl.primitive(key) { try dnnl.matmulPrimitive(aMD, bMD, cMD, bias: biasMD) }
        var args: [(Int32, MemoryDescriptor, UnsafeMutableRawPointer)] =
            [(DNNL_ARG_SRC, aMD, a.data), (DNNL_ARG_WEIGHTS, bMD, b.data), (DNNL_ARG_DST, cMD, out)]
        if let biasTensor, let biasMD { args.append((DNNL_ARG_BIAS, biasMD, biasTensor.data)) }
        try dnnl.execute(primitive, args, keepAlive: [a, b, biasTensor as Any], device: a.device)
    }
}

/// oneDNN rejects stride 0 and wants a sensible stride on size-1 dims; give size-1 dims
/// the stride they would have if contiguous.
func fixStrides(_ dims: [Int], _ strides: [Int]) -> [Int] {
    let dense = Tensor.contiguousStrides(for: dims)
    return dims.indices.map { dims[$0] == 1 ? dense[$0] : strides[$0] }
}

extension Tensor {
    /// `self`, or a contiguous copy when some axis of size > 1 has stride 0 (oneDNN cannot
    /// read broadcast views).
    func withoutBroadcastStrides() throws -> Tensor {
        for (d, s) in zip(shape, strides) where d > 1 && s == 0 { return try copied() }
        return self
    }
}
