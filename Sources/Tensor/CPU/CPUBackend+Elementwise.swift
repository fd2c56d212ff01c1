import Foundation

extension CPUBackend {
    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        try CPUBackend.requireCompute(x, op.rawValue)
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device, memoryFormat: x.memoryFormat)
        try mapRows(x, into: out) { src, dst, n in applyUnary(op, src, dst, n) }
        return out
    }

    public func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor {
        try CPUBackend.requireCompute(x, "affine")
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device, memoryFormat: x.memoryFormat)
        try mapRows(x, into: out) { src, dst, n in
            for i in 0..<n { dst[i] = src[i] * scale + shift }
        }
        return out
    }

    public func clamp(_ x: Tensor, lower: Float, upper: Float) throws -> Tensor {
        try CPUBackend.requireCompute(x, "clamp")
        guard lower <= upper else { throw TensorError.invalidArgument("clamp bounds \(lower)...\(upper) are reversed") }
        let out = try Tensor.empty(x.shape, dtype: x.dtype, device: x.device, memoryFormat: x.memoryFormat)
        try mapRows(x, into: out) { src, dst, n in
            for i in 0..<n { let v = src[i]; dst[i] = v < lower ? lower : (v > upper ? upper : v) }
        }
        return out
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try binary(op, a, b, activatingB: nil)
    }

    public func gated(_ x: Tensor, by gate: Tensor, activation: UnaryOp) throws -> Tensor {
        try binary(.mul, x, gate, activatingB: activation)
    }

    /// `op(a, activation(b))`; the activation is rounded to b's dtype before `op`, so that the
    /// numbers are those of the separate unary and binary operations.
    private func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, activatingB activation: UnaryOp?) throws -> Tensor {
        let device = try CPUBackend.sameDevice(a, b, op: op.rawValue)
        try CPUBackend.requireCompute(a, op.rawValue)
        try CPUBackend.requireCompute(b, op.rawValue)
        let shape = try broadcastShape(a.shape, b.shape)
        // The output keeps its operands' layout: channels-last only when no full-size operand
        // is contiguous and one is channels-last (then the loop runs in NHWC order).
        let full = [a, b].filter { $0.shape == shape }
        let format: MemoryFormat = !full.contains(where: \.isContiguous) && full.contains(where: \.needsChannelsLastPath) ? .channelsLast : .contiguous
        let out = try Tensor.empty(shape, dtype: CPUBackend.resultType(a.dtype, b.dtype), device: device, memoryFormat: format)
        var ea = try a.expanded(to: shape), eb = try b.expanded(to: shape)
        var dst = out
        if format == .channelsLast {
            ea = try ea.permuted(0, 2, 3, 1); eb = try eb.permuted(0, 2, 3, 1); dst = out.nhwcView
        }
        let (dims, strideSets) = coalesceJointly(shape: dst.shape, strides: [ea.strides, eb.strides])
        let inner = dims.last ?? 1
        let rows = out.count / max(inner, 1)
        guard out.count > 0 else { return out }
        let sa = strideSets[0], sb = strideSets[1]
        let pa = UnsafeRawPointer(ea.data), pb = UnsafeRawPointer(eb.data), po = dst.data
        let ta = a.dtype, tb = b.dtype, to = out.dtype
        Parallel.forEachChunk(rows, grain: max(1, 16384 / max(inner, 1))) { range in
            let block = min(inner, CPUBackend.block)
            let bufA = F32Scratch(block), bufB = F32Scratch(block), bufO = F32Scratch(block)
            let bufAct = activation.map { _ in F32Scratch(block) }
            let rounding = activation.map { _ in UnsafeMutableRawPointer.allocate(byteCount: block * 4, alignment: 64) }
            defer { bufA.free(); bufB.free(); bufO.free(); bufAct?.free(); rounding?.deallocate() }
            for row in range {
                let offA = Tensor.elementOffset(row: row, dims: dims, strides: sa)
                let offB = Tensor.elementOffset(row: row, dims: dims, strides: sb)
                var start = 0
                while start < inner {
                    let n = min(block, inner - start)
                    let strideA = sa.last ?? 1, strideB = sb.last ?? 1
                    let xa = f32Run(pa + (offA + start * strideA) * ta.itemSize, stride: strideA, dtype: ta, count: strideA == 0 ? 1 : n, scratch: bufA.pointer)
                    var xb = f32Run(pb + (offB + start * strideB) * tb.itemSize, stride: strideB, dtype: tb, count: strideB == 0 ? 1 : n, scratch: bufB.pointer)
                    if let activation, let bufAct, let rounding {
                        let count = strideB == 0 ? 1 : n
                        applyUnary(activation, xb, bufAct.pointer, count)
                        if tb != .f32 {   // as the unary op's output would be stored
                            convertRun(UnsafeRawPointer(bufAct.pointer), 1, .f32, rounding, tb, count)
                            convertRun(UnsafeRawPointer(rounding), 1, tb, UnsafeMutableRawPointer(bufAct.pointer), .f32, count)
                        }
                        xb = UnsafePointer(bufAct.pointer)
                    }
                    let dstIsDirect = to == .f32
                    let dst = dstIsDirect ? (po + (row * inner + start) * 4).assumingMemoryBound(to: Float.self) : bufO.pointer
                    applyBinary(op, xa, scalarA: strideA == 0, xb, scalarB: strideB == 0, dst, n)
                    if !dstIsDirect { convertRun(UnsafeRawPointer(dst), 1, .f32, po + (row * inner + start) * to.itemSize, to, n) }
                    start += n
                }
            }
        }
        return out
    }

    /// Applies `body(srcF32, dstF32, n)` over `x` in blocks, writing `out` (same shape,
    /// contiguous, or both channels-last).
    func mapRows(_ x: Tensor, into out: Tensor,
                 _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) throws {
        // A channels-last output (of a channels-last input) is walked in memory order.
        if out.needsChannelsLastPath { return try mapRows(x.nhwcView, into: out.nhwcView, body) }
        let (dims, strides) = Tensor.coalesced(shape: x.shape, strides: x.strides)
        let inner = dims.last ?? 1, innerStride = strides.last ?? 1
        let rows = x.count / max(inner, 1)
        guard x.count > 0 else { return }
        let src = UnsafeRawPointer(x.data), dst = out.data
        let from = x.dtype, to = out.dtype
        nonisolated(unsafe) let body = body
        Parallel.forEachChunk(rows * ((inner + CPUBackend.block - 1) / CPUBackend.block), grain: 4) { range in
            let blocksPerRow = (inner + CPUBackend.block - 1) / CPUBackend.block
            let inBuf = F32Scratch(CPUBackend.block), outBuf = F32Scratch(CPUBackend.block)
            defer { inBuf.free(); outBuf.free() }
            for item in range {
                let row = item / blocksPerRow, start = (item % blocksPerRow) * CPUBackend.block
                let n = min(CPUBackend.block, inner - start)
                let base = Tensor.elementOffset(row: row, dims: dims, strides: strides) + start * innerStride
                let input = f32Run(src + base * from.itemSize, stride: innerStride, dtype: from, count: n, scratch: inBuf.pointer)
                let outOffset = row * inner + start
                if to == .f32 {
                    body(input, (dst + outOffset * 4).assumingMemoryBound(to: Float.self), n)
                } else {
                    body(input, outBuf.pointer, n)
                    convertRun(UnsafeRawPointer(outBuf.pointer), 1, .f32, dst + outOffset * to.itemSize, to, n)
                }
            }
        }
    }
}

/// Merges dims that are contiguous in every operand at once.
func coalesceJointly(shape: [Int], strides: [[Int]]) -> (dims: [Int], strides: [[Int]]) {
    var dims: [Int] = []
    var out = [[Int]](repeating: [], count: strides.count)
    for axis in shape.indices where shape[axis] != 1 {
        let d = shape[axis]
        if let last = dims.last, strides.indices.allSatisfy({ out[$0].last == strides[$0][axis] * d }) {
            dims[dims.count - 1] = last * d
            for k in strides.indices { out[k][out[k].count - 1] = strides[k][axis] }
        } else {
            dims.append(d)
            for k in strides.indices { out[k].append(strides[k][axis]) }
        }
    }
    if dims.isEmpty { return ([1], strides.map { _ in [1] }) }
    return (dims, out)
}

func applyUnary(_ op: UnaryOp, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    // Each case is a plain loop so that LLVM vectorises it.
    switch op {
    case .silu: for i in 0..<n { let x = src[i]; dst[i] = x * fastSigmoid(x) }
    case .sigmoid: for i in 0..<n { dst[i] = fastSigmoid(src[i]) }
    case .exp: for i in 0..<n { dst[i] = fastExp(src[i]) }
    case .tanh: for i in 0..<n { dst[i] = fastTanh(src[i]) }
    case .quickGelu: for i in 0..<n { let x = src[i]; dst[i] = x * fastSigmoid(1.702 * x) }
    case .geluTanh:
        let c: Float = 0.7978845608028654  // sqrt(2/pi)
        for i in 0..<n { let x = src[i]; dst[i] = 0.5 * x * (1 + fastTanh(c * (x + 0.044715 * x * x * x))) }
    case .gelu: for i in 0..<n { dst[i] = fastGelu(src[i]) }
    case .neg: for i in 0..<n { dst[i] = -src[i] }
    case .relu: for i in 0..<n { dst[i] = Swift.max(src[i], 0) }
    case .sqrt: for i in 0..<n { dst[i] = src[i].squareRoot() }
    case .rsqrt: for i in 0..<n { dst[i] = 1 / src[i].squareRoot() }
    case .abs: for i in 0..<n { dst[i] = Swift.abs(src[i]) }
    case .square: for i in 0..<n { dst[i] = src[i] * src[i] }
    }
}

func applyBinary(_ op: BinaryOp, _ a: UnsafePointer<Float>, scalarA: Bool, _ b: UnsafePointer<Float>, scalarB: Bool,
                 _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    @inline(__always) func loop(_ f: (Float, Float) -> Float) {
        // Separate loops per broadcast pattern keep each one vectorisable.
        switch (scalarA, scalarB) {
        case (false, false): for i in 0..<n { dst[i] = f(a[i], b[i]) }
        case (false, true): let y = b[0]; for i in 0..<n { dst[i] = f(a[i], y) }
        case (true, false): let x = a[0]; for i in 0..<n { dst[i] = f(x, b[i]) }
        case (true, true): let v = f(a[0], b[0]); for i in 0..<n { dst[i] = v }
        }
    }
    switch op {
    case .add: loop(+)
    case .sub: loop(-)
    case .mul: loop(*)
    case .div: loop(/)
    case .maximum: loop { Swift.max($0, $1) }
    case .minimum: loop { Swift.min($0, $1) }
    }
}
