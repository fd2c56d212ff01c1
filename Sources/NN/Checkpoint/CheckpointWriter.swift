import Foundation
import Tensor

/// What `CheckpointWriter.save` wrote.
public struct SavedCheckpoint: Sendable {
    public let folder: String
    /// Weight files in shard order.
    public let files: [String]
    /// The index file name, when sharded.
    public let indexFile: String?
    public let plan: ShardPlan
    /// Stale files removed from the folder.
    public let removed: [String]
}

/// Saves a state dict as Diffusers' `ModelMixin.save_pretrained(safe_serialization=True)`
/// does: split by `ShardPlanner`, shards named `<name>-00001-of-0000N.safetensors` (variant
/// before the extension), an index (`indent=2`, sorted keys) when there is more than one
/// shard, `{"format": "pt"}` metadata, and a config beside.
///
/// Unlike Diffusers, nothing is removed or replaced until every new file has been written
/// under a temporary name; then stale files are removed and the new ones renamed into place.
/// Stale files are the shards of the same weights name and variant from earlier saves
/// (Diffusers' prefix match also deletes other variants' shards, orphaning their index),
/// plus, for the same variant, the index when saving unsharded (Diffusers leaves it, and
/// its loader then prefers the stale index and fails) and the single file when saving
/// sharded.
public enum CheckpointWriter {
    /// Diffusers' default `max_shard_size` ("10GB").
    public static let defaultMaxShardSize = 10_000_000_000

    /// - Parameters:
    ///   - tensors: the state dict in key order (the order sharding follows).
    ///   - config: bytes to write as `config.json` (nil: none).
    public static func save(_ tensors: [(name: String, tensor: Tensor)], to folder: String,
                            maxShardSize: Int = defaultMaxShardSize, variant: String? = nil,
                            weightsName: String = WeightNames.diffusers, config: [UInt8]? = nil) throws -> SavedCheckpoint {
        try WeightNames.validateVariant(variant)
        var seen = Set<String>()
        for (name, _) in tensors where !seen.insert(name).inserted {
            throw SafeTensorsError.invalidTensorName(path: folder, name: name, reason: "the name appears twice in the state dict")
        }
        // Folders made here are removed again if the save fails: a failed run leaves nothing.
        let created = try OutputFolder.create(folder)
        var saved = false
        defer { if !saved { OutputFolder.remove(created) } }

        let plan = ShardPlanner.plan(
            tensors.map { .init(name: $0.name, byteCount: $0.tensor.storage.byteCount, storageID: ObjectIdentifier($0.tensor.storage)) },
            maxShardSize: maxShardSize)
        let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        let files = plan.isSharded
            ? plan.shards.indices.map { WeightNames.shardName(weightsName, variant: variant, index: $0 + 1, count: plan.shards.count) }
            : [WeightNames.addingVariant(weightsName, variant)]
        let indexName = WeightNames.indexName(weightsName, variant: variant)

        // Everything new goes to temporary files first, committed together (all or none);
        // whatever is not committed deletes itself.
        let outputs = OutputFiles()
        for (file, names) in zip(files, plan.shards) {
            var shard: [String: Tensor] = [:]
            for name in names { shard[name] = byName[name] }
            let path = joinPath(folder, file)
            try outputs.claim(path, role: "weight file \(file)")
            try outputs.stage(path) { try SafeTensorsWriter.write(shard, into: $0) }
        }
        if plan.isSharded {
            var weightMap: [(key: String, value: JSONValue)] = []
            for (file, names) in zip(files, plan.shards) { weightMap += names.map { ($0, JSONValue.string(file)) } }
            let index = JSONValue.object([
                ("metadata", .object([("total_size", .number(String(plan.totalSize)))])),
                ("weight_map", .object(weightMap)),
            ])
            let indexPath = joinPath(folder, indexName)
            try outputs.claim(indexPath, role: "the shard index")
            try outputs.stage(indexPath, bytes: Array((JSONWriter.render(index, style: .python(indent: 2)) + "\n").utf8))
        }
        if let config {
            let configPath = joinPath(folder, "config.json")
            try outputs.claim(configPath, role: "the config")
            try outputs.stage(configPath, bytes: config)
        }
        try outputs.commit()
        saved = true
        // Stale files go only once the new ones are in place (their names never coincide).
        let removed = try removeStale(in: folder, keeping: Set(files), weightsName: weightsName, variant: variant,
                                      sharded: plan.isSharded, indexName: indexName)
        return SavedCheckpoint(folder: folder, files: files, indexFile: plan.isSharded ? indexName : nil,
                               plan: plan, removed: removed)
    }

    private static func removeStale(in folder: String, keeping: Set<String>, weightsName: String, variant: String?,
                                    sharded: Bool, indexName: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw CheckpointError.io(path: folder, message: "cannot list the folder")
        }
        let variantName = WeightNames.addingVariant(weightsName, variant)
        let base = String(variantName.dropLast(variantName.hasSuffix(".safetensors") ? ".safetensors".count : 0))
        var staleSingles: Set<String> = []
        if sharded {
            staleSingles.insert(variantName)
        } else {
            staleSingles.insert(indexName)
            if let variant { staleSingles.insert(WeightNames.legacyIndexName(weightsName, variant: variant)) }
        }
        var removed: [String] = []
        for name in names.sorted() where !keeping.contains(name) {
            let path = joinPath(folder, name)
            guard JSONFile.isFile(path), WeightNames.isShard(name, ofBase: base) || staleSingles.contains(name) else { continue }
            guard unlink(path) == 0 else {
                throw CheckpointError.io(path: path, message: "cannot remove the stale file: " + String(cString: strerror(errno)))
            }
            removed.append(name)
        }
        return removed
    }
}
