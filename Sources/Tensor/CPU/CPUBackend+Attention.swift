import CDNNL
import Foundation

extension CPUBackend {
    /// Query rows and key rows per tile of the memory-efficient kernel.
    static let attentionQueryTile = 128
    static let attentionKeyTile = 512
    /// Up to this many scores a sample (256 KiB in f32, one tile's worth) the `auto` kernel
    /// computes the whole matrix, that many scores at a time.
    static let smallAttentionScores = attentionQueryTile * attentionKeyTile

    /// softmax(q·kᵀ·scale + mask)·v over [B, H, S, D] operands. `mask` is additive (float)
    /// or boolean (true = attend), broadcastable to [B, H, Sq, Sk]; `isCausal` masks keys
    /// after the query's position (top-left aligned, as PyTorch).
    public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor?,
                                          scale: Float?, isCausal: Bool, kernel: AttentionKernel) throws -> Tensor {
        let device = try CPUBackend.sameDevice(query, key, value, mask, op: "attention")
        for t in [query, key, value] { try CPUBackend.requireCompute(t, "attention") }
        guard query.rank == 4, key.rank == 4, value.rank == 4 else {
            throw TensorError.shapeMismatch("attention needs [B, H, S, D] operands, got \(query.shape), \(key.shape), \(value.shape)")
        }
        let (b, h, sq, d) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let sk = key.shape[2], dv = value.shape[3]
        guard key.shape == [b, h, sk, d], value.shape == [b, h, sk, dv] else {
            throw TensorError.shapeMismatch("attention key \(key.shape) and value \(value.shape) do not fit query \(query.shape)")
        }
        let maskShape = [b, h, sq, sk]
        let additiveMask = try mask.map { try additive(mask: $0, broadcastTo: maskShape) }
        let scale = scale ?? 1 / Float(d).squareRoot()
        switch kernel {
        case .reference:
            return try referenceAttention(query, key, value, mask: additiveMask, scale: scale, isCausal: isCausal)
        case .auto where h * sq * sk <= CPUBackend.smallAttentionScores:
            // The whole matrix, of as many samples at a time as fit one tile's worth of scores:
            // the kernel a sample gets (and so its numbers) does not depend on the batch it comes
            // in, so that a batch run in chunks gets the whole batch's images.
            let group = CPUBackend.smallAttentionScores / (h * sq * sk)
            guard b > group else { return try referenceAttention(query, key, value, mask: additiveMask, scale: scale, isCausal: isCausal) }
            let parts = try stride(from: 0, to: b, by: group).map { start -> Tensor in
                func part(_ t: Tensor) throws -> Tensor { try t.narrowed(axis: 0, start: start, length: min(group, b - start)) }
                return try referenceAttention(part(query), part(key), part(value), mask: additiveMask.map(part), scale: scale, isCausal: isCausal)
            }
            return try concat(parts, axis: 0)
        case .memoryEfficient, .auto:
            return try tiledAttention(query, key, value, mask: additiveMask, scale: scale, isCausal: isCausal, device: device)
        case .sliced(let size):
            guard size >= 1 else { throw TensorError.invalidArgument("attention slice size must be at least 1, not \(size)") }
            // Per sample, `size` heads at a time: [1, n, S, D] views, the mask narrowed alike.
            let samples = try (0..<b).map { i -> Tensor in
                let heads = try stride(from: 0, to: h, by: size).map { start -> Tensor in
                    let n = min(size, h - start)
                    func part(_ t: Tensor) throws -> Tensor {
                        try t.narrowed(axis: 0, start: i, length: 1).narrowed(axis: 1, start: start, length: n)
                    }
                    return try referenceAttention(part(query), part(key), part(value), mask: additiveMask.map(part),
                                                  scale: scale, isCausal: isCausal)
                }
                return try concat(heads, axis: 1)
            }
            return try concat(samples, axis: 0)
        }
    }

    /// A float mask as f32 (its own shape, broadcast by strides); a boolean mask as 0 / -inf.
    private func additive(mask: Tensor, broadcastTo shape: [Int]) throws -> Tensor {
        _ = try mask.expanded(to: shape)  // validates broadcasting
        if mask.dtype == .bool {
            let keep = try mask.contiguous()
            let out = try Tensor.empty(mask.shape, dtype: .f32, device: mask.device)
            let src = keep.data.assumingMemoryBound(to: UInt8.self), dst = out.data.assumingMemoryBound(to: Float.self)
            for i in 0..<mask.count { dst[i] = src[i] != 0 ? 0 : -.infinity }
            return try out.expanded(to: shape)
        }
        guard mask.dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: "attention mask", dtype: mask.dtype) }
        return try mask.to(.f32).expanded(to: shape)
    }

    /// Materialises the [B, H, Sq, Sk] scores in f32: simple, and the memory baseline.
    private func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor?, scale: Float,
                                    isCausal: Bool) throws -> Tensor {
        var scores = try affine(matmul(q.to(.f32), k.to(.f32).transposed(2, 3)), scale: scale, shift: 0)  // [B, H, Sq, Sk]
        if let mask { scores = try binary(.add, scores, mask) }
        if isCausal {
            let (sq, sk) = (scores.shape[2], scores.shape[3])
            let p = scores.data.assumingMemoryBound(to: Float.self)
            for row in 0..<(scores.count / sk) {
                let i = row % sq
                if i + 1 < sk { for j in (i + 1)..<sk { p[row * sk + j] = -.infinity } }
            }
        }
        let probabilities = try softmax(scores, axis: -1)
        return try matmul(probabilities, v.to(.f32)).to(q.dtype)
    }

    /// Flash-style attention: each work item takes a tile of query rows and streams over
    /// key tiles with an online softmax, so scratch is one score tile per thread.
    private func tiledAttention(_ query: Tensor, _ key: Tensor, _ value: Tensor, mask: Tensor?, scale: Float,
                                isCausal: Bool, device: Device) throws -> Tensor {
        let dtype: DType = [query, key, value].allSatisfy { $0.dtype == .bf16 } ? .bf16 : .f32
        func prepared(_ t: Tensor) throws -> Tensor {
            let c = try t.to(dtype)
            return c.strides[3] == 1 && c.strides.allSatisfy({ $0 != 0 }) ? c : try c.copied()
        }
        let q = try prepared(query), k = try prepared(key), v = try prepared(value)
        let (b, h, sq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let sk = k.shape[2], dv = v.shape[3]
        let out = try Tensor.empty([b, h, sq, dv], dtype: query.dtype, device: device)
        guard out.count > 0 else { return out }
        let tq = CPUBackend.attentionQueryTile, tk = CPUBackend.attentionKeyTile
        let queryTiles = (sq + tq - 1) / tq
        let dnnl = try DNNL.get(threads: 1)
        let itemSize = dtype.itemSize
        let tileRows = min(tq, sq), tileCols = min(tk, sk)
        // Every tile shape: full tiles and the shorter last query and key tiles.
        let rowCounts = Set([tileRows, sq - (queryTiles - 1) * tq])
        let keyTiles = (sk + tk - 1) / tk
        let colCounts = keyTiles == 0 ? [] : Set([tileCols, sk - (keyTiles - 1) * tk])

        // Each worker sets up its scratch and binds a product per tile shape once, then takes
        // query tiles until none is left: per-tile set-up dominated short key ranges (77 text tokens).
        try Parallel.forEachWorker(b * h * queryTiles, setUp: {
            // Scratch for the largest tile: scores [rows, cols] f32, probabilities in the compute
            // dtype, output accumulator [rows, dv] f32, running max and sum. All on the device's allocator.
            var scratch = AttentionTileScratch(
                scores: try Storage(byteCount: tileRows * tileCols * 4, device: device),
                probabilities: dtype == .f32 ? nil : try Storage(byteCount: tileRows * tileCols * itemSize, device: device),
                accumulator: try Storage(byteCount: tileRows * dv * 4, device: device),
                stats: try Storage(byteCount: tileRows * 2 * 4, device: device))
            for rows in rowCounts {
                for cols in colCounts {
                    // S = Q_tile · K_tileᵀ  [rows, cols];  O += P · V_tile  [rows, dv]
                    let qMD = try memoryDesc(dims: [rows, d], strides: [q.strides[2], 1], dtype: dtype)
                    let kMD = try memoryDesc(dims: [d, cols], strides: [1, k.strides[2]], dtype: dtype)
                    let sMD = try memoryDesc(dims: [rows, cols], strides: [cols, 1], dtype: .f32)
                    let pMD = try memoryDesc(dims: [rows, cols], strides: [cols, 1], dtype: dtype)
                    let vMD = try memoryDesc(dims: [cols, dv], strides: [v.strides[2], 1], dtype: dtype)
                    let oMD = try memoryDesc(dims: [rows, dv], strides: [dv, 1], dtype: .f32)
                    let qk = try dnnl.primitive("attn-qk|\(rows),\(cols),\(d)|\(q.strides[2]),\(k.strides[2])|\(dtype)") {
                        try dnnl.matmulPrimitive(qMD, kMD, sMD)
                    }
                    let pv = try dnnl.primitive("attn-pv|\(rows),\(cols),\(dv)|\(v.strides[2])|\(dtype)") {
                        try dnnl.matmulPrimitive(pMD, vMD, oMD, accumulate: true)
                    }
                    scratch.products[rows << 32 | cols] = (
                        try dnnl.bind(qk, [(DNNL_ARG_SRC, qMD), (DNNL_ARG_WEIGHTS, kMD), (DNNL_ARG_DST, sMD)], device: device),
                        try dnnl.bind(pv, [(DNNL_ARG_SRC, pMD), (DNNL_ARG_WEIGHTS, vMD), (DNNL_ARG_DST, oMD)], device: device))
                }
            }
            return scratch
        }) { scratch, nextItem in
            DNNL.setThreads(1)
            let (scores, probabilities, accumulator) = (scratch.scores, scratch.probabilities, scratch.accumulator)
            let s = scores.pointer.assumingMemoryBound(to: Float.self)
            let o = accumulator.pointer.assumingMemoryBound(to: Float.self)
            let runningMax = scratch.stats.pointer.assumingMemoryBound(to: Float.self), runningSum = runningMax + tileRows
            while let item = nextItem() {
                let bh = item / queryTiles, i0 = (item % queryTiles) * tq
                let (bi, hi) = (bh / h, bh % h)
                let rows = min(tq, sq - i0)
                memset(accumulator.pointer, 0, rows * dv * 4)
                for r in 0..<rows { runningMax[r] = -.infinity; runningSum[r] = 0 }
                let qBase = q.data + (bi * q.strides[0] + hi * q.strides[1] + i0 * q.strides[2]) * itemSize
                var j0 = 0
                while j0 < sk {
                    if isCausal && j0 > i0 + rows - 1 { break }  // every later key is masked
                    let cols = min(tk, sk - j0)
                    let kBase = k.data + (bi * k.strides[0] + hi * k.strides[1] + j0 * k.strides[2]) * itemSize
                    let vBase = v.data + (bi * v.strides[0] + hi * v.strides[1] + j0 * v.strides[2]) * itemSize
                    guard let product = scratch.products[rows << 32 | cols] else {
                        throw TensorError.backend("attention tile \(rows)×\(cols) has no bound product")
                    }
                    try product.scores.run(qBase, kBase, scores.pointer)
                    // Online softmax update of each row.
                    for r in 0..<rows {
                        let row = s + r * cols
                        let i = i0 + r
                        let maskRow: UnsafePointer<Float>? = mask.map {
                            UnsafePointer($0.data.assumingMemoryBound(to: Float.self)
                                + bi * $0.strides[0] + hi * $0.strides[1] + i * $0.strides[2] + j0 * $0.strides[3])
                        }
                        let maskStride = mask?.strides[3] ?? 0
                        let limit = isCausal ? max(0, min(cols, i - j0 + 1)) : cols
                        // Without a mask (and with a positive scale) the scale folds into the exponent: one pass fewer.
                        let plain = maskRow == nil && limit == cols && scale > 0
                        let tileMax = plain ? vectorMax(UnsafePointer(row), cols) * scale
                            : scaleMaskAndMax(row, cols, scale: scale, mask: maskRow, maskStride: maskStride, validColumns: limit)
                        let newMax = max(runningMax[r], tileMax)
                        let correction = newMax == -.infinity ? 1 : Foundation.exp(runningMax[r] - newMax)
                        let shift = newMax == -.infinity ? 0 : newMax
                        let rowSum = exponentiate(row, cols, scale: plain ? scale : 1, subtracting: shift)
                        runningSum[r] = runningSum[r] * correction + rowSum
                        runningMax[r] = newMax
                        if correction != 1 { for c in 0..<dv { o[r * dv + c] *= correction } }
                    }
                    // O += P · V_tile, with P in the compute dtype.
                    let pPointer: UnsafeMutableRawPointer
                    if let probabilities {
                        convertRun(UnsafeRawPointer(s), 1, .f32, probabilities.pointer, dtype, rows * cols)
                        pPointer = probabilities.pointer
                    } else {
                        pPointer = scores.pointer
                    }
                    try product.values.run(pPointer, vBase, accumulator.pointer)
                    j0 += cols
                }
                // Normalise and write the tile: out[bi, hi, i0 + r, :] = O[r] / sum[r].
                for r in 0..<rows {
                    let inverse = 1 / runningSum[r]
                    for c in 0..<dv { o[r * dv + c] *= inverse }
                }
                let outBase = out.data + ((bi * h + hi) * sq + i0) * dv * out.dtype.itemSize
                convertRun(UnsafeRawPointer(o), 1, .f32, outBase, out.dtype, rows * dv)
            }
        }
        withExtendedLifetime((q, k, v, mask)) {}
        return out
    }
}

/// row = row·scale + mask (columns ≥ validColumns become -inf); returns the row maximum.
@inline(__always)
private func scaleMaskAndMax(_ row: UnsafeMutablePointer<Float>, _ n: Int, scale: Float,
                             mask: UnsafePointer<Float>?, maskStride: Int, validColumns: Int) -> Float {
    if let mask {
        if maskStride == 1 {
            for c in 0..<n { row[c] = row[c] * scale + mask[c] }
        } else {
            for c in 0..<n { row[c] = row[c] * scale + mask[c * maskStride] }
        }
    } else {
        for c in 0..<n { row[c] *= scale }
    }
    if validColumns < n { for c in validColumns..<n { row[c] = -.infinity } }
    return vectorMax(UnsafePointer(row), n)
}

/// row = exp(row·scale - m); returns the sum. One pass: sixteen exponentials at a time, summed
/// into sixteen partial sums while they are still in registers.
@inline(__always)
private func exponentiate(_ row: UnsafeMutablePointer<Float>, _ n: Int, scale: Float, subtracting m: Float) -> Float {
    var partial = SIMD16<Float>(repeating: 0)
    let raw = UnsafeMutableRawPointer(row)
    var i = 0
    while i + 16 <= n {
        for k in 0..<16 { row[i + k] = fastExpNonPositive(multiplyAdd(row[i + k], scale, -m)) }
        partial += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    var sum = partial.sum()
    // The tail (77 text tokens leave 13) as its own loop, which vectorises with a masked step.
    let tail = row + i
    for c in 0..<(n - i) { tail[c] = fastExpNonPositive(multiplyAdd(tail[c], scale, -m)) }
    for c in 0..<(n - i) { sum += tail[c] }
    return sum
}

/// One attention worker's scratch: tile buffers and a bound product pair per tile shape.
private struct AttentionTileScratch {
    let scores: Storage
    let probabilities: Storage?
    let accumulator: Storage
    let stats: Storage
    var products: [Int: (scores: BoundPrimitive, values: BoundPrimitive)] = [:]
}
