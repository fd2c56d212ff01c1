import Foundation

/// An n-dimensional array: a strided view of a `Storage`. Views (reshape, permute, slice,
/// expand) share storage; operations return new tensors.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: Storage
    public let dtype: DType
    public let shape: [Int]
    /// Strides in elements.
    public let strides: [Int]
    /// Offset of the first element, in elements.
    public let offset: Int

    public init(storage: Storage, dtype: DType, shape: [Int], strides: [Int]? = nil, offset: Int = 0) {
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(for: shape)
        self.offset = offset
    }

    /// Uninitialised contiguous tensor.
    public static func empty(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        try checkShape(shape)
        let storage = try Storage(byteCount: shape.reduce(1, *) * dtype.itemSize, device: device)
        return Tensor(storage: storage, dtype: dtype, shape: shape)
    }

    public static func zeros(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let t = try empty(shape, dtype: dtype, device: device)
        if !MemoryRehearsal.skipsWork { memset(t.storage.pointer, 0, t.storage.byteCount) }
        return t
    }

    /// A tensor holding `values`, converted to `dtype`.
    public init(_ values: [Float], shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws {
        self = try Tensor.filled(with: values, as: .f32, shape: shape, device: device).to(dtype)
    }

    /// An integer tensor holding `values`, converted to `dtype`.
    public init(int64 values: [Int64], shape: [Int], dtype: DType = .i64, device: Device = .cpu) throws {
        self = try Tensor.filled(with: values, as: .i64, shape: shape, device: device).to(dtype)
    }

    /// A contiguous tensor of `storedAs` holding the bytes of `values`.
    private static func filled<T>(with values: [T], as storedAs: DType, shape: [Int], device: Device) throws -> Tensor {
        guard shape.reduce(1, *) == values.count else {
            throw TensorError.shapeMismatch("\(values.count) values do not fill shape \(shape)")
        }
        let tensor = try Tensor.empty(shape, dtype: storedAs, device: device)
        values.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { tensor.storage.pointer.copyMemory(from: base, byteCount: bytes.count) }
        }
        return tensor
    }

    /// A tensor with the same bytes as `data` (contiguous, little-endian).
    public init(bytes data: UnsafeRawBufferPointer, dtype: DType, shape: [Int], device: Device = .cpu) throws {
        let t = try Tensor.empty(shape, dtype: dtype, device: device)
        guard data.count == t.byteCount else {
            throw TensorError.shapeMismatch("\(data.count) bytes do not fill \(dtype) shape \(shape)")
        }
        if let base = data.baseAddress { t.storage.pointer.copyMemory(from: base, byteCount: data.count) }
        self = t
    }

    public var device: Device { storage.device }
    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.itemSize }

    /// Pointer to the first element (valid while `storage` lives).
    public var data: UnsafeMutableRawPointer { storage.pointer + offset * dtype.itemSize }

    public var isContiguous: Bool {
        var expected = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    public var description: String { "Tensor(\(dtype), \(shape), \(device))" }

    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= max(shape[axis], 1)
        }
        return strides
    }

    static func checkShape(_ shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError.invalidArgument("negative dimension in shape \(shape)") }
        var total = 1
        for d in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 64 else { throw TensorError.invalidArgument("shape \(shape) is too large") }
            total = product
        }
    }

    /// Normalises a possibly negative axis.
    public func axis(_ a: Int) throws -> Int {
        let resolved = a < 0 ? a + rank : a
        guard resolved >= 0, resolved < max(rank, 1) else {
            throw TensorError.invalidArgument("axis \(a) is out of range for a rank-\(rank) tensor")
        }
        return resolved
    }

    /// The values converted to Float (any dtype), in row-major order.
    public func floats() throws -> [Float] {
        let f = try contiguous().to(.f32)
        return Array(UnsafeBufferPointer(start: f.data.assumingMemoryBound(to: Float.self), count: f.count))
    }

    /// How many values are NaN or infinite (0 for integer dtypes).
    public func nonFiniteCount() throws -> Int {
        guard dtype.isFloatingPoint, count > 0 else { return 0 }
        let f = try contiguous().to(.f32)
        let values = UnsafeBufferPointer(start: f.data.assumingMemoryBound(to: Float.self), count: f.count)
        var found = 0
        for v in values where !v.isFinite { found += 1 }
        return found
    }

    /// The values converted to Int64 (any dtype), in row-major order.
    public func int64s() throws -> [Int64] {
        let f = try contiguous().to(.i64)
        return Array(UnsafeBufferPointer(start: f.data.assumingMemoryBound(to: Int64.self), count: f.count))
    }

    /// The contiguous bytes of this tensor.
    public func bytes() throws -> [UInt8] {
        let c = try contiguous()
        return Array(UnsafeRawBufferPointer(start: c.data, count: c.byteCount))
    }

    /// A single value (rank 0 or one element) as Float.
    public func item() throws -> Float {
        guard count == 1 else { throw TensorError.invalidArgument("item() needs one element, the tensor has \(count)") }
        return try floats()[0]
    }
}
