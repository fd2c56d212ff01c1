import Tensor

/// A safetensors file opened by memory-mapping it. Tensors it hands out borrow the mapped
/// bytes (no copy, nothing accounted to the cpu allocator) and keep the mapping alive.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let header: SafeTensorsHeader
    private let mapping: MappedFile
    private let index: [String: Int]

    /// Maps and validates `path`; throws `SafeTensorsError` naming what is wrong.
    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        header = try SafeTensorsHeader.parse(file: mapping.bytes, path: path)
        var index: [String: Int] = [:]
        for (i, entry) in header.entries.enumerated() { index[entry.name] = i }
        self.index = index
    }

    /// Tensors in data order (including dtypes `Tensor` cannot hold).
    public var entries: [SafeTensorsEntry] { header.entries }
    /// Tensor names in data order.
    public var names: [String] { header.entries.map(\.name) }
    /// `__metadata__`, when present.
    public var metadata: [String: String]? { header.metadata }

    public func entry(named name: String) -> SafeTensorsEntry? { index[name].map { header.entries[$0] } }

    /// The tensor `name`, backed by the mapping. Throws for unknown names and for dtypes
    /// `Tensor` cannot represent.
    public func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else { throw SafeTensorsError.tensorNotFound(path: path, name: name) }
        return try tensor(for: entry)
    }

    /// Every tensor by name (throws if any has an unsupported dtype).
    public func tensors() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for entry in header.entries { result[entry.name] = try tensor(for: entry) }
        return result
    }

    func tensor(for entry: SafeTensorsEntry) throws -> Tensor {
        guard let dtype = entry.dtype.tensorDType else {
            throw SafeTensorsError.unsupportedDType(path: path, tensor: entry.name, dtype: entry.dtype)
        }
        guard let base = mapping.base, entry.byteCount > 0 else {
            // Empty tensors have no bytes to borrow.
            return try Tensor.empty(entry.shape, dtype: dtype)
        }
        let pointer = base + header.dataStart + entry.dataOffsets.lowerBound
        // The kernels load elements at their natural alignment. Files written in the
        // format's order are aligned; a hand-made misaligned one gets a private copy.
        if Int(bitPattern: pointer) % dtype.itemSize != 0 {
            return try Tensor(bytes: UnsafeRawBufferPointer(start: pointer, count: entry.byteCount), dtype: dtype, shape: entry.shape)
        }
        let storage = Storage(mappedPointer: pointer, byteCount: entry.byteCount, owner: mapping)
        return Tensor(storage: storage, dtype: dtype, shape: entry.shape)
    }
}
