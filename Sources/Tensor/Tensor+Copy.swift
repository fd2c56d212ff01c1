import Foundation

extension Tensor {
    /// This tensor in `dtype` (a new contiguous tensor; `self` when the dtype already matches).
    public func to(_ dtype: DType) throws -> Tensor {
        if dtype == self.dtype { return self }
        return try copied(dtype: dtype, device: device)
    }

    /// This tensor on `device` (a real copy, throttled by the device's copy bandwidth).
    public func to(_ device: Device) throws -> Tensor {
        try to(device, submittedAt: DispatchTime.now().uptimeNanoseconds)
    }

    /// `to(device)` for a copy handed to the device's copy engine at `submittedAt` (uptime
    /// nanoseconds) and run later by a transfer thread: a bandwidth-limited engine starts it
    /// as soon as the copies before it end, as a DMA engine works through its queue, however
    /// late the thread that does the bytes gets a core.
    /// `ahead`: the submission of a transfer queue's copy made ahead of its use (nil: the
    /// compute thread's own copy, which it waits for).
    public func to(_ device: Device, submittedAt: UInt64, ahead: CopyQueue.Submission? = nil) throws -> Tensor {
        if device == self.device { return self }
        let result = try copied(dtype: dtype, device: device)
        Tensor.throttleCopy(bytes: byteCount, between: self.device, and: device, since: submittedAt, ahead: ahead)
        return result
    }

    /// A contiguous tensor with the same values (`self` when already contiguous).
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        return try copied(dtype: dtype, device: device)
    }

    /// A fresh contiguous copy, optionally converted and placed elsewhere.
    public func copied(dtype: DType? = nil, device: Device? = nil) throws -> Tensor {
        func copy() throws -> Tensor {
            let out = try Tensor.empty(shape, dtype: dtype ?? self.dtype, device: device ?? self.device)
            try out.copyElements(from: self)
            return out
        }
        if MemoryRehearsal.skipsWork, let rehearsal = MemoryRehearsal.current {
            return try rehearsal.operation("copy", inputs: [self], copy)
        }
        return try OpProfile.measure(.copy, copy)
    }

    /// Writes `source` (broadcast to this shape, any dtype) into this contiguous tensor.
    public func copyElements(from source: Tensor) throws {
        guard storage.isWritable else { throw TensorError.notWritable("cannot write into a memory-mapped tensor") }
        guard isContiguous else { throw TensorError.invalidArgument("copy destination must be contiguous") }
        let src = try source.expanded(to: shape)
        let total = count
        guard total > 0 else { return }
        let (dims, srcStrides) = Tensor.coalesced(shape: src.shape, strides: src.strides)
        let inner = dims.last ?? 1
        let innerStride = srcStrides.last ?? 1
        let rows = total / inner
        let from = src.dtype, to = dtype
        let srcBase = UnsafeRawPointer(src.data), dstBase = data
        let srcSize = from.itemSize, dstSize = to.itemSize
        if rows == 1 {
            // One run (a contiguous or evenly strided source, e.g. a whole weight converted to
            // another dtype): split the run itself so that every thread converts a piece.
            Parallel.forEachChunk(inner, grain: 32768) { range in
                convertRun(srcBase + range.lowerBound * innerStride * srcSize, innerStride, from,
                           dstBase + range.lowerBound * dstSize, to, range.count)
            }
            storage.invalidateDerived()
            return
        }
        Parallel.forEachChunk(rows, grain: max(1, 32768 / max(inner, 1))) { range in
            for row in range {
                let srcOffset = Tensor.elementOffset(row: row, dims: dims, strides: srcStrides)
                convertRun(srcBase + srcOffset * srcSize, innerStride, from,
                           dstBase + row * inner * dstSize, to, inner)
            }
        }
        storage.invalidateDerived()
    }

    /// Merges adjacent dimensions that are contiguous with each other, dropping size-1 dims.
    static func coalesced(shape: [Int], strides: [Int]) -> (dims: [Int], strides: [Int]) {
        var dims: [Int] = [], outStrides: [Int] = []
        for (d, s) in zip(shape, strides) where d != 1 {
            if let lastDim = dims.last, let lastStride = outStrides.last, lastStride == s * d {
                dims[dims.count - 1] = lastDim * d
                outStrides[outStrides.count - 1] = s
            } else {
                dims.append(d); outStrides.append(s)
            }
        }
        if dims.isEmpty { return ([1], [1]) }
        return (dims, outStrides)
    }

    /// Element offset of the first element of row `row`, rows being all dims but the last.
    @inline(__always)
    static func elementOffset(row: Int, dims: [Int], strides: [Int]) -> Int {
        var remaining = row, offset = 0
        var axis = dims.count - 2
        while axis >= 0 {
            let d = dims[axis]
            offset += (remaining % d) * strides[axis]
            remaining /= d
            axis -= 1
        }
        return offset
    }

    /// Sleeps out the rest of a copy's time when a device has a copy bandwidth limit, so that
    /// transfers cost what they would on a real bus: the copy is booked on the slower device's
    /// copy engine, behind the copies already booked there.
    static func throttleCopy(bytes: Int, between a: Device, and b: Device, since start: UInt64, ahead: CopyQueue.Submission? = nil) {
        let limited = [a, b].filter { ($0.allocator.copyBytesPerSecond ?? 0) > 0 }
        guard let engine = limited.min(by: { ($0.allocator.copyBytesPerSecond ?? 0) < ($1.allocator.copyBytesPerSecond ?? 0) }) else { return }
        // A rehearsal counts the bytes; its copies take no time and book none of the engine's.
        if let rehearsal = MemoryRehearsal.current { return rehearsal.transferred(bytes, through: engine, ahead: ahead) }
        guard let end = engine.allocator.bookCopy(bytes: bytes, startingAt: start) else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if end > now { Thread.sleep(forTimeInterval: Double(end - now) / 1e9) }
    }
}
