// Views: new shapes and strides over the same storage, no copies.

extension Tensor {
    /// A view with a new shape (one dimension may be -1). Copies only when the strides
    /// cannot express the new shape.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let resolved = try resolveShape(newShape)
        if let strides = viewStrides(for: resolved) {
            return Tensor(storage: storage, dtype: dtype, shape: resolved, strides: strides, offset: offset)
        }
        return try contiguous().reshaped(resolved)
    }

    public func reshaped(_ dims: Int...) throws -> Tensor { try reshaped(dims) }

    private func resolveShape(_ newShape: [Int]) throws -> [Int] {
        let unknown = newShape.indices.filter { newShape[$0] == -1 }
        guard unknown.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw TensorError.invalidArgument("invalid shape \(newShape) for reshape")
        }
        var resolved = newShape
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        if let u = unknown.first {
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch("cannot reshape \(shape) into \(newShape)")
            }
            resolved[u] = count / known
        }
        guard resolved.reduce(1, *) == count else {
            throw TensorError.shapeMismatch("cannot reshape \(shape) (\(count) elements) into \(newShape)")
        }
        return resolved
    }

    /// Strides that express `newShape` over the current layout, or nil (PyTorch's rule:
    /// each group of old dims that merges must be contiguous within itself).
    private func viewStrides(for newShape: [Int]) -> [Int]? {
        if isContiguous || count == 0 || rank == 0 { return Tensor.contiguousStrides(for: newShape) }
        var result = [Int](repeating: 1, count: newShape.count)
        var viewAxis = newShape.count - 1
        var chunkStride = strides[rank - 1]
        var oldElements = 1, viewElements = 1
        for oldAxis in stride(from: rank - 1, through: 0, by: -1) {
            oldElements *= shape[oldAxis]
            // A chunk of old axes ends where the next outer axis is not contiguous with it.
            let chunkEnds = oldAxis == 0
                || (shape[oldAxis - 1] != 1 && strides[oldAxis - 1] != oldElements * chunkStride)
            guard chunkEnds else { continue }
            while viewAxis >= 0 && (viewElements < oldElements || newShape[viewAxis] == 1) {
                result[viewAxis] = viewElements * chunkStride
                viewElements *= newShape[viewAxis]
                viewAxis -= 1
            }
            if viewElements != oldElements { return nil }
            if oldAxis > 0 {
                chunkStride = strides[oldAxis - 1]
                oldElements = 1
                viewElements = 1
            }
        }
        return viewAxis == -1 ? result : nil
    }

    /// Reorders the axes: `permuted([0, 2, 3, 1])` turns NCHW into NHWC (a view).
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard axes.count == rank else { throw TensorError.invalidArgument("permutation \(axes) does not match rank \(rank)") }
        let resolved = try axes.map { try axis($0) }
        guard Set(resolved).count == rank else { throw TensorError.invalidArgument("permutation \(axes) repeats an axis") }
        return Tensor(storage: storage, dtype: dtype, shape: resolved.map { shape[$0] },
                      strides: resolved.map { strides[$0] }, offset: offset)
    }

    public func permuted(_ axes: Int...) throws -> Tensor { try permuted(axes) }

    /// Swaps two axes (a view).
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(try axis(a), try axis(b))
        return try permuted(order)
    }

    /// Elements `start..<start+length` along `axis` (a view).
    public func narrowed(axis a: Int, start: Int, length: Int) throws -> Tensor {
        let ax = try axis(a)
        guard start >= 0, length >= 0, start + length <= shape[ax] else {
            throw TensorError.invalidArgument("range \(start)..<\(start + length) is out of bounds for axis \(a) of size \(shape[ax])")
        }
        var newShape = shape
        newShape[ax] = length
        return Tensor(storage: storage, dtype: dtype, shape: newShape, strides: strides,
                      offset: offset + start * strides[ax])
    }

    /// Every `step`-th element of `range` along `axis` (a view).
    public func sliced(axis a: Int, _ range: Range<Int>, step: Int = 1) throws -> Tensor {
        let ax = try axis(a)
        guard step > 0, range.lowerBound >= 0, range.upperBound <= shape[ax] else {
            throw TensorError.invalidArgument("slice \(range) step \(step) is out of bounds for axis \(a) of size \(shape[ax])")
        }
        var newShape = shape, newStrides = strides
        newShape[ax] = (range.count + step - 1) / step
        newStrides[ax] = strides[ax] * step
        return Tensor(storage: storage, dtype: dtype, shape: newShape, strides: newStrides,
                      offset: offset + range.lowerBound * strides[ax])
    }

    /// Broadcasts to `target` (stride 0 on broadcast axes; a view).
    public func expanded(to target: [Int]) throws -> Tensor {
        if target == shape { return self }
        guard target.count >= rank else {
            throw TensorError.shapeMismatch("cannot expand \(shape) to \(target)")
        }
        let lead = target.count - rank
        var newStrides = [Int](repeating: 0, count: target.count)
        for i in 0..<target.count {
            if i < lead { continue }
            let d = shape[i - lead]
            if d == target[i] { newStrides[i] = strides[i - lead] }
            else if d == 1 { newStrides[i] = 0 }
            else { throw TensorError.shapeMismatch("cannot expand \(shape) to \(target)") }
        }
        return Tensor(storage: storage, dtype: dtype, shape: target, strides: newStrides, offset: offset)
    }

    /// Inserts a size-1 axis at `axis` (a view).
    public func unsqueezed(_ a: Int) throws -> Tensor {
        let ax = a < 0 ? a + rank + 1 : a
        guard ax >= 0, ax <= rank else { throw TensorError.invalidArgument("axis \(a) is out of range for unsqueeze of rank \(rank)") }
        var newShape = shape, newStrides = strides
        newShape.insert(1, at: ax)
        newStrides.insert(ax < rank ? strides[ax] * shape[ax] : 1, at: ax)
        return Tensor(storage: storage, dtype: dtype, shape: newShape, strides: newStrides, offset: offset)
    }

    /// Removes a size-1 axis (a view).
    public func squeezed(_ a: Int) throws -> Tensor {
        let ax = try axis(a)
        guard shape[ax] == 1 else { throw TensorError.invalidArgument("axis \(a) has size \(shape[ax]), not 1") }
        var newShape = shape, newStrides = strides
        newShape.remove(at: ax); newStrides.remove(at: ax)
        return Tensor(storage: storage, dtype: dtype, shape: newShape, strides: newStrides, offset: offset)
    }

    /// Collapses axes `start...end` into one (a view when possible).
    public func flattened(from start: Int = 0, to end: Int = -1) throws -> Tensor {
        let s = try axis(start), e = try axis(end)
        guard s <= e else { throw TensorError.invalidArgument("flatten range \(start)...\(end) is empty") }
        let merged = shape[s...e].reduce(1, *)
        return try reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }
}

/// The shape two operands broadcast to (NumPy rules), or an error naming both.
public func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw TensorError.shapeMismatch("shapes \(a) and \(b) do not broadcast")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}
