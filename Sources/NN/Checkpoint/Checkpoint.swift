import Foundation
import Tensor

/// The weights of one model: a single safetensors file, or shards listed by an index.
/// Resolution follows Diffusers: the index is preferred when both exist; with a variant,
/// `<name>.safetensors.index.<variant>.json`, then the legacy
/// `<name>.safetensors.<variant>.index.json`, then `<name>.<variant>.safetensors`.
/// transformers' names (`model.safetensors[.index.json]`) are tried after Diffusers'.
public struct Checkpoint: Sendable {
    public enum Layout: Sendable {
        case single(file: String)
        case sharded(index: ShardIndex)
    }

    /// The folder holding the weights.
    public let folder: String
    public let layout: Layout
    public let variant: String?

    /// Weights names tried, in order.
    public static let weightsNames = [WeightNames.diffusers, WeightNames.transformers]

    /// Resolves the weights in `folder` and validates the index (bare shard names, every
    /// shard present). Throws `CheckpointError.noWeights` listing the names tried.
    public init(folder: String, variant: String? = nil) throws {
        try WeightNames.validateVariant(variant)
        guard JSONFile.isDirectory(folder) else {
            if FileManager.default.fileExists(atPath: folder) { throw CheckpointError.notAFolder(path: folder) }
            throw CheckpointError.folderNotFound(path: folder)
        }
        var tried: [String] = []
        for weights in Checkpoint.weightsNames {
            var indexNames = [WeightNames.indexName(weights, variant: variant)]
            if let variant { indexNames.append(WeightNames.legacyIndexName(weights, variant: variant)) }
            for name in indexNames {
                tried.append(name)
                let path = joinPath(folder, name)
                if try Self.isPresent(path) {
                    try self.init(index: ShardIndex(path: path), folder: folder, variant: variant)
                    return
                }
            }
            let single = WeightNames.addingVariant(weights, variant)
            tried.append(single)
            if try Self.isPresent(joinPath(folder, single)) {
                self.init(folder: folder, layout: .single(file: single), variant: variant)
                return
            }
        }
        throw CheckpointError.noWeights(folder: folder, tried: tried)
    }

    /// Whether a weights file is there; something that is not a regular file under a weights
    /// name (a folder, a FIFO) is an error naming it, not a reason to look further.
    private static func isPresent(_ path: String) throws -> Bool {
        guard let kind = FileKind.of(path) else { return false }
        guard kind == .regularFile else { throw FileError.notARegularFile(path: path, kind: kind.phrase) }
        return true
    }

    /// A checkpoint given by one file: a `.safetensors` file or an index `.json`.
    public init(file path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        if path.hasSuffix(".json") {
            try self.init(index: ShardIndex(path: path), folder: folder, variant: nil)
        } else {
            self.init(folder: folder, layout: .single(file: url.lastPathComponent), variant: nil)
        }
    }

    private init(index: ShardIndex, folder: String, variant: String?) throws {
        for shard in index.shardFiles where try !Self.isPresent(joinPath(folder, shard)) {
            throw CheckpointError.missingShard(folder: folder, shard: shard, index: index.path)
        }
        self.init(folder: folder, layout: .sharded(index: index), variant: variant)
    }

    private init(folder: String, layout: Layout, variant: String?) {
        self.folder = folder
        self.layout = layout
        self.variant = variant
    }

    /// The weight files, in loading order (shards sorted by name).
    public var files: [String] {
        switch layout {
        case .single(let file): return [file]
        case .sharded(let index): return index.shardFiles
        }
    }

    /// Variants present in `folder` (`fp16` for `diffusion_pytorch_model.fp16.safetensors`
    /// and the other variant spellings), sorted.
    public static func availableVariants(in folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var found = Set<String>()
        for weights in weightsNames {
            let stem = String(weights.dropLast(".safetensors".count))
            for name in names {
                if name.hasPrefix(weights + ".index."), name.hasSuffix(".json") {
                    let v = name.dropFirst((weights + ".index.").count).dropLast(".json".count)
                    if !v.isEmpty, !v.contains(".") { found.insert(String(v)) }
                } else if name.hasPrefix(weights + "."), name.hasSuffix(".index.json") {
                    let v = name.dropFirst(weights.count + 1).dropLast(".index.json".count)
                    if !v.isEmpty, !v.contains(".") { found.insert(String(v)) }
                } else if name.hasPrefix(stem + "."), name.hasSuffix(".safetensors") {
                    var v = String(name.dropFirst(stem.count + 1).dropLast(".safetensors".count))
                    if WeightNames.isShard(v, ofBase: String(v.prefix(while: { $0 != "-" }))),
                       let dash = v.firstIndex(of: "-") { v = String(v[..<dash]) }
                    if !v.isEmpty, !v.contains("."), !v.contains("-") { found.insert(v) }
                }
            }
        }
        return found.sorted()
    }

    /// Maps each weight file in turn and hands its tensors (zero-copy, backed by the
    /// mapping) to `body`. A shard's mapping is released before the next one is mapped,
    /// unless `body` keeps its tensors. For an index, every tensor it assigns to the shard
    /// must be in it (`CheckpointError.tensorMissingFromShard`).
    public func forEachShard(_ body: (_ file: String, _ tensors: [String: Tensor]) throws -> Void) throws {
        for file in files {
            // The iteration's scope ends the file object (and, with the tensors, the mapping).
            try body(file, try openShard(file).tensors())
        }
    }

    /// Every tensor of the checkpoint. With `dtype`, tensors stored in another dtype are
    /// converted into owned copies (so their shard's mapping is dropped); tensors already
    /// in that dtype (or all, when `dtype` is nil) stay backed by the mapping unless
    /// `copy` is set.
    public func loadAll(dtype: DType? = nil, copy: Bool = false) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        try forEachShard { _, tensors in
            for (name, tensor) in tensors {
                let target = dtype ?? tensor.dtype
                result[name] = (copy || target != tensor.dtype) ? try tensor.copied(dtype: target) : tensor
            }
        }
        return result
    }

    /// The headers of every weight file (no tensor is created), in loading order.
    public func headers() throws -> [(file: String, header: SafeTensorsHeader)] {
        try files.map { ($0, try openShard($0).header) }
    }

    /// Maps one weight file and checks that it holds every tensor the index assigns to it.
    private func openShard(_ file: String) throws -> SafeTensorsFile {
        let shard = try SafeTensorsFile(path: joinPath(folder, file))
        if case .sharded(let index) = layout {
            for tensor in index.tensors(in: file) where shard.entry(named: tensor) == nil {
                throw CheckpointError.tensorMissingFromShard(index: index.path, tensor: tensor, shard: file)
            }
        }
        return shard
    }
}
