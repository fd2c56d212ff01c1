/// A sharded checkpoint's index (`*.safetensors.index.json`):
/// `{"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}`.
public struct ShardIndex: Sendable {
    public let path: String
    /// `metadata.total_size`, when present.
    public let totalSize: Int?
    /// Tensor → shard file, in file order.
    public let weightMap: [(tensor: String, file: String)]

    /// The distinct shard files, sorted (the order Diffusers loads them in).
    public var shardFiles: [String] { Array(Set(weightMap.map(\.file))).sorted() }

    /// Tensors the index assigns to `file`, in index order.
    public func tensors(in file: String) -> [String] { weightMap.filter { $0.file == file }.map(\.tensor) }

    /// Reads and validates `path`: an object with a `weight_map` of bare file names.
    public init(path: String) throws {
        let json = try JSONFile.read(path)
        guard json.objectMembers != nil else {
            throw CheckpointError.invalidIndex(path: path, reason: "is \(json.typeName), not a JSON object")
        }
        guard let map = json["weight_map"] else { throw CheckpointError.invalidIndex(path: path, reason: "has no 'weight_map'") }
        guard let members = map.objectMembers else {
            throw CheckpointError.invalidIndex(path: path, reason: "has a 'weight_map' that is \(map.typeName), not an object")
        }
        var weightMap: [(tensor: String, file: String)] = []
        for (tensor, value) in members {
            guard let file = value.stringValue else {
                throw CheckpointError.invalidIndex(
                    path: path, reason: "maps tensor '\(tensor)' to \(value.typeName), not a shard file name")
            }
            weightMap.append((tensor, file))
        }
        var totalSize: Int?
        if let metadata = json["metadata"], !metadata.isNull {
            guard metadata.objectMembers != nil else {
                throw CheckpointError.invalidIndex(path: path, reason: "has 'metadata' that is \(metadata.typeName), not an object")
            }
            if let size = metadata["total_size"], !size.isNull {
                // transformers has written total_size as a float at times; accept integral values.
                guard let value = size.intValue ?? size.doubleValue.flatMap({ $0 >= 0 && $0 == $0.rounded() && $0 < 9e18 ? Int($0) : nil }),
                      value >= 0 else {
                    throw CheckpointError.invalidIndex(path: path, reason: "has a 'metadata.total_size' that is not a non-negative integer")
                }
                totalSize = value
            }
        }
        for file in Set(weightMap.map(\.file)) where !ShardIndex.isBareFileName(file) {
            throw CheckpointError.shardPathNotAllowed(index: path, shard: file)
        }
        self.path = path
        self.totalSize = totalSize
        self.weightMap = weightMap
    }

    /// A name that stays inside the model folder: no separators, not `.` or `..`.
    static func isBareFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\\") && !name.contains("\0")
    }
}
