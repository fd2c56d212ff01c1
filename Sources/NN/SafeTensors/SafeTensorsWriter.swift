import Tensor

/// Writes safetensors files exactly as the reference writer (Rust `safetensors`, used by
/// `safetensors.torch.save_file`) lays them out, so that files compare byte for byte:
/// entries sorted by dtype (the format's order, descending) then name (bytewise),
/// `__metadata__` first, header padded with spaces to a multiple of 8, data contiguous.
public enum SafeTensorsWriter {
    /// Diffusers' `save_pretrained` metadata.
    public static let defaultMetadata: [String: String] = ["format": "pt"]

    /// Writes `tensors` to `path` atomically (temporary file + rename; several files that
    /// belong together go through `OutputFiles` and `write(_:into:metadata:)`).
    /// - Parameter metadata: `__metadata__`; nil leaves it out.
    public static func write(_ tensors: [String: Tensor], to path: String,
                             metadata: [String: String]? = defaultMetadata) throws {
        let file = try TemporaryFile(finalPath: path)
        do {
            try write(tensors, into: file, metadata: metadata)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }

    /// The bytes `write` would put in the file (for small tensors and tests).
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String]? = defaultMetadata,
                                 path: String = "<memory>") throws -> [UInt8] {
        let (header, ordered) = try prepare(tensors, metadata: metadata, path: path)
        var out = header
        for (_, tensor) in ordered {
            out.append(contentsOf: UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
        }
        return out
    }

    /// Writes the file's bytes into `file` (a staged output).
    public static func write(_ tensors: [String: Tensor], into file: TemporaryFile,
                             metadata: [String: String]? = defaultMetadata) throws {
        let (header, ordered) = try prepare(tensors, metadata: metadata, path: file.finalPath)
        try file.write(header)
        for (_, tensor) in ordered where tensor.byteCount > 0 {
            try file.write(UnsafeRawPointer(tensor.data), count: tensor.byteCount)
        }
    }

    /// The order the reference writer puts tensors in.
    public static func dataOrder(_ entries: [(name: String, dtype: SafeTensorsDType)]) -> [String] {
        entries.sorted { a, b in
            if a.dtype != b.dtype { return a.dtype.formatRank > b.dtype.formatRank }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }.map(\.name)
    }

    /// The length-prefixed, padded header and the tensors (contiguous) in data order.
    static func prepare(_ tensors: [String: Tensor], metadata: [String: String]?,
                        path: String) throws -> (header: [UInt8], ordered: [(String, Tensor)]) {
        if tensors["__metadata__"] != nil {
            throw SafeTensorsError.invalidTensorName(path: path, name: "__metadata__", reason: "the name is reserved for metadata")
        }
        let order = dataOrder(tensors.map { (name: $0.key, dtype: SafeTensorsDType($0.value.dtype)) })
        var members: [(key: String, value: JSONValue)] = []
        if let metadata {
            let sorted = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            members.append(("__metadata__", .object(sorted.map { ($0.key, JSONValue.string($0.value)) })))
        }
        var ordered: [(String, Tensor)] = []
        var offset = 0
        for name in order {
            guard let original = tensors[name] else { continue }
            let tensor = try original.contiguous()
            let end = offset + tensor.byteCount
            members.append((name, .object([
                ("dtype", .string(SafeTensorsDType(tensor.dtype).rawValue)),
                ("shape", .array(tensor.shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(offset)), .number(String(end))])),
            ])))
            ordered.append((name, tensor))
            offset = end
        }
        var json = Array(JSONWriter.render(.object(members), style: .compact).utf8)
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var header: [UInt8] = []
        header.reserveCapacity(8 + json.count)
        var n = UInt64(json.count)
        for _ in 0..<8 { header.append(UInt8(n & 0xFF)); n >>= 8 }
        header.append(contentsOf: json)
        return (header, ordered)
    }
}
