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

    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError.shapeMismatch("upsampleNearest2x needs [N, C, H, W], got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if x.needsChannelsLastPath {
            // The same in NHWC: whole pixels (runs of C) repeated, the output channels-last.
            let out = try Tensor.empty([n, c, 2 * h, 2 * w], dtype: x.dtype, device: x.device, memoryFormat: .channelsLast)
            let source = try x.nhwcView.reshaped([n, h, 1, w, 1, c]).expanded(to: [n, h, 2, w, 2, c])
            try out.nhwcView.reshaped([n, h, 2, w, 2, c]).assign(source)
            return out
        }
        // out[n, c, 2i + a, 2j + b] = x[n, c, i, j]: a broadcast view of x written once.
        let source = try x.reshaped([n, c, h, 1, w, 1]).expanded(to: [n, c, h, 2, w, 2])
        let out = try Tensor.empty([n, c, 2 * h, 2 * w], dtype: x.dtype, device: x.device)
        try out.reshaped([n, c, h, 2, w, 2]).assign(source)
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
