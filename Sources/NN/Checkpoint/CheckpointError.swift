/// Errors about model folders, configs, sharded checkpoints and size strings. Every case
/// names the file, key, tensor or value at fault.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    case folderNotFound(path: String)
    case notAFolder(path: String)
    /// The folder holds no weights file under any recognised name.
    case noWeights(folder: String, tried: [String])
    case invalidJSON(path: String, message: String)
    case invalidConfig(path: String, reason: String)
    case missingConfigKey(path: String, key: String)
    case configKeyType(path: String, key: String, expected: String, found: String)
    /// A config value of the right JSON type outside what the key allows (a zero divisor, a
    /// NaN epsilon, a layer count no model has); `value` as the file states it.
    case configValue(path: String, key: String, value: String, expected: String)
    /// The config implies more weights than the checkpoint beside it holds (`implied` and
    /// `found` say how many tensors and parameters), found before any module is built.
    case configCheckpointMismatch(config: String, checkpoint: String, implied: String, found: String)
    case invalidIndex(path: String, reason: String)
    /// A weight_map file name that is not a bare file name (Diffusers' ValueError).
    case shardPathNotAllowed(index: String, shard: String)
    /// A shard named in the index is not in the folder (Diffusers' FileNotFoundError).
    case missingShard(folder: String, shard: String, index: String)
    /// weight_map assigns `tensor` to `shard`, whose header does not list it.
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    /// A size string huggingface_hub's `parse_size_to_int` rejects (message is hub's).
    case invalidSize(message: String)
    case invalidModelIndex(path: String, reason: String)
    case invalidVariant(variant: String, reason: String)
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case let .folderNotFound(path): return "no such folder: \(path)"
        case let .notAFolder(path): return "\(path) is not a folder"
        case let .noWeights(folder, tried):
            return "\(folder) holds no weights file (looked for \(tried.joined(separator: ", ")))"
        case let .invalidJSON(path, message): return "\(path) is not valid JSON: \(message)"
        case let .invalidConfig(path, reason): return "\(path): \(reason)"
        case let .missingConfigKey(path, key): return "\(path) has no key '\(key)'"
        case let .configKeyType(path, key, expected, found):
            return "'\(key)' in \(path) is \(found), expected \(expected)"
        case let .configValue(path, key, value, expected):
            return "'\(key)' in \(path) is \(value), expected \(expected)"
        case let .configCheckpointMismatch(config, checkpoint, implied, found):
            return "\(config) and the checkpoint \(checkpoint) disagree: the config implies \(implied), the checkpoint holds \(found)"
        case let .invalidIndex(path, reason): return "checkpoint index \(path) \(reason)"
        case let .shardPathNotAllowed(index, shard):
            return "The shard filename '\(shard)' in the checkpoint index \(index) contains a path separator or a "
                + "parent-directory reference, which is not allowed. Shard filenames must be plain filenames located "
                + "in the model directory."
        case let .missingShard(folder, shard, index):
            return "\(folder) does not appear to have a file named \(shard) which is required according to the checkpoint index \(index)."
        case let .tensorMissingFromShard(index, tensor, shard):
            return "tensor '\(tensor)' is assigned to \(shard) by the checkpoint index \(index), but that shard does not contain it"
        case let .invalidSize(message): return message
        case let .invalidModelIndex(path, reason): return "\(path): \(reason)"
        case let .invalidVariant(variant, reason): return "invalid variant '\(variant)': \(reason)"
        case let .io(path, message): return "cannot read or write \(path): \(message)"
        }
    }
}
