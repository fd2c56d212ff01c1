import Foundation

extension CPUBackend {
    public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidArgument("concat needs at least one tensor") }
        let device = first.device
        let ax = try first.axis(axis)
        var total = 0
        for t in tensors {
            guard t.device == device else { throw TensorError.invalidArgument("concat got tensors on \(device) and \(t.device)") }
            guard t.rank == first.rank,
                  t.shape.enumerated().allSatisfy({ $0.offset == ax || $0.element == first.shape[$0.offset] }) else {
                throw TensorError.shapeMismatch("concat along axis \(axis): \(t.shape) does not match \(first.shape)")
            }
            total += t.shape[ax]
        }
        let dtype = tensors.dropFirst().reduce(first.dtype) { CPUBackend.resultType($0, $1.dtype) }
        var shape = first.shape
        shape[ax] = total
        // Channels-last inputs joined along the channels stay channels-last: each is a
        // run of channels per pixel in the output.
        let nhwc = ax == 1 && first.rank == 4 && tensors.allSatisfy(\.needsChannelsLastPath)
        let out = try Tensor.empty(shape, dtype: dtype, device: device, memoryFormat: nhwc ? .channelsLast : .contiguous)
        var start = 0
        for t in tensors where t.shape[ax] > 0 {
            if nhwc {
                try out.nhwcView.narrowed(axis: 3, start: start, length: t.shape[ax]).assign(t.nhwcView)
            } else {
                try out.narrowed(axis: ax, start: start, length: t.shape[ax]).assign(t)
            }
            start += t.shape[ax]
        }
        return out
    }

    public func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError.shapeMismatch("upsampleNearest needs [N, C, H, W], got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard height > 0, width > 0, h > 0 || x.count == 0, w > 0 || x.count == 0 else {
            throw TensorError.invalidArgument("cannot resize \(x.shape) to \(height)×\(width)")
        }
        let format: MemoryFormat = x.needsChannelsLastPath ? .channelsLast : .contiguous
        let out = try Tensor.empty([n, c, height, width], dtype: x.dtype, device: x.device, memoryFormat: format)
        if height == 2 * h && width == 2 * w {
            // Each pixel twice along both sides: a broadcast view of x written once.
            if format == .channelsLast {
                let source = try x.nhwcView.reshaped([n, h, 1, w, 1, c]).expanded(to: [n, h, 2, w, 2, c])
                try out.nhwcView.reshaped([n, h, 2, w, 2, c]).assign(source)
            } else {
                let source = try x.reshaped([n, c, h, 1, w, 1]).expanded(to: [n, c, h, 2, w, 2])
                try out.reshaped([n, c, h, 2, w, 2]).assign(source)
            }
            return out
        }
        guard out.count > 0 else { return out }
        // Other sizes: output row i (column j) reads row ⌊i·(h/height)⌋, as ATen's nearest_idx.
        func sources(_ input: Int, _ output: Int) -> [Int] {
            if output == input { return Array(0..<output) }
            if output == 2 * input { return (0..<output).map { $0 >> 1 } }
            let scale = Float(input) / Float(output)
            return (0..<output).map { min(Int((Float($0) * scale).rounded(.down)), input - 1) }
        }
        let rows = sources(h, height), columns = sources(w, width)
        let source = format == .channelsLast ? try x.nhwcView.contiguous() : try x.contiguous()   // [N, H, W, C] or [N, C, H, W]
        let item = x.dtype.itemSize
        let (src, dst) = (UnsafeRawPointer(source.data), out.data)
        if format == .channelsLast {
            // Whole pixels (runs of C) copied.
            let pixel = c * item
            Parallel.forEachChunk(n * height, grain: 1) { range in
                for r in range {
                    let (b, i) = (r / height, r % height)
                    let inRow = src + (b * h + rows[i]) * w * pixel, outRow = dst + r * width * pixel
                    for j in 0..<width { (outRow + j * pixel).copyMemory(from: inRow + columns[j] * pixel, byteCount: pixel) }
                }
            }
        } else {
            Parallel.forEachChunk(n * c * height, grain: 8) { range in
                for r in range {
                    let (plane, i) = (r / height, r % height)
                    let inRow = src + (plane * h + rows[i]) * w * item, outRow = dst + r * width * item
                    for j in 0..<width { (outRow + j * item).copyMemory(from: inRow + columns[j] * item, byteCount: item) }
                }
            }
        }
        withExtendedLifetime(source) {}
        return out
    }

    public func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        guard !ids.dtype.isFloatingPoint, ids.dtype != .bool else {
            throw TensorError.unsupportedDType(operation: "embedding ids", dtype: ids.dtype)
        }
        guard weight.rank == 2 else { throw TensorError.shapeMismatch("embedding weight must be 2-D, got \(weight.shape)") }
        let (rows, width) = (weight.shape[0], weight.shape[1])
        let indices = try ids.int64s()
        let table = try weight.contiguous()
        let out = try Tensor.empty(ids.shape + [width], dtype: weight.dtype, device: weight.device)
        let rowBytes = width * weight.dtype.itemSize
        for (i, index) in indices.enumerated() {
            guard index >= 0, index < rows else {
                throw TensorError.invalidArgument("embedding index \(index) is out of range for \(rows) rows")
            }
            (out.data + i * rowBytes).copyMemory(from: table.data + Int(index) * rowBytes, byteCount: rowBytes)
        }
        withExtendedLifetime(table) {}
        return out
    }
}

extension Tensor {
    /// Writes `source` (broadcast, converted) into this view, which may be strided.
    public func assign(_ source: Tensor) throws {
        guard storage.isWritable else { throw TensorError.notWritable("cannot write into a memory-mapped tensor") }
        if isContiguous { try copyElements(from: source); return }
        let src = try source.expanded(to: shape)
        guard count > 0 else { return }
        let (dims, strideSets) = coalesceJointly(shape: shape, strides: [strides, src.strides])
        let inner = dims.last ?? 1
        let rows = count / inner
        let dstStrides = strideSets[0], srcStrides = strideSets[1]
        let from = src.dtype, to = dtype
        let srcBase = UnsafeRawPointer(src.data), dstBase = data
        let dstInner = dstStrides.last ?? 1, srcInner = srcStrides.last ?? 1
        Parallel.forEachChunk(rows, grain: max(1, 32768 / inner)) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: inner * to.itemSize, alignment: 64)
            defer { scratch.deallocate() }
            for row in range {
                let so = Tensor.elementOffset(row: row, dims: dims, strides: srcStrides)
                let d = Tensor.elementOffset(row: row, dims: dims, strides: dstStrides)
                if dstInner == 1 {
                    convertRun(srcBase + so * from.itemSize, srcInner, from, dstBase + d * to.itemSize, to, inner)
                } else {
                    // Convert the run densely, then scatter it along the destination stride.
                    convertRun(srcBase + so * from.itemSize, srcInner, from, scratch, to, inner)
                    for i in 0..<inner {
                        (dstBase + (d + i * dstInner) * to.itemSize).copyMemory(from: scratch + i * to.itemSize, byteCount: to.itemSize)
                    }
                }
            }
        }
        storage.invalidateDerived()
    }
}
