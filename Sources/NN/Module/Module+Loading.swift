import Foundation
import Tensor

extension Module {
    /// Fills every parameter from `checkpoint`, shard by shard, checking keys strictly:
    /// missing and unexpected keys and shape mismatches are all listed in one error, and
    /// nothing is loaded unless everything fits. Weights already in `dtype` (or all, when
    /// `dtype` is nil) stay backed by the memory-mapped file; others become owned copies.
    ///
    /// Weights are not scanned for NaN or infinity: a pass over every element of a multi-GB
    /// checkpoint would cost as much as reading it, on every load. Non-finite weights show up
    /// as non-finite outputs, which the pipeline's checks on its intermediate results name.
    public func load(from checkpoint: Checkpoint, dtype: DType? = nil, device: Device = .cpu) throws {
        var entries: [String: CheckpointEntry] = [:]
        for (file, header) in try checkpoint.headers() {
            for entry in header.entries {
                entries[resolvedPath(entry.name)] = CheckpointEntry(name: entry.name, shape: entry.shape, dtype: entry.dtype.rawValue,
                                                                    isFloatingPoint: entry.dtype.isFloatingPoint,
                                                                    file: joinPath(checkpoint.folder, file))
            }
        }
        try checkKeys(against: entries)
        let slots = Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.path, $0.parameter) })
        try checkpoint.forEachShard { _, tensors in
            for (name, tensor) in tensors {
                guard let slot = slots[resolvedPath(name)] else { continue }
                slot.value = try place(tensor, dtype: dtype, device: device)
            }
        }
    }

    /// Fills every parameter from `weights` (checked as `load(from:)` does).
    public func load(weights: [String: Tensor], dtype: DType? = nil, device: Device = .cpu) throws {
        let resolved = Dictionary(weights.map { (resolvedPath($0.key), (name: $0.key, tensor: $0.value)) },
                                  uniquingKeysWith: { first, _ in first })
        try checkKeys(against: resolved.mapValues {
            CheckpointEntry(name: $0.name, shape: $0.tensor.shape, dtype: "\($0.tensor.dtype)",
                            isFloatingPoint: $0.tensor.dtype.isFloatingPoint, file: nil)
        })
        for (path, slot) in namedParameters() {
            guard let tensor = resolved[path]?.tensor else { continue }
            slot.value = try place(tensor, dtype: dtype, device: device)
        }
    }

    /// The parameter path a checkpoint key fills: itself, or the root's alias for it.
    private func resolvedPath(_ key: String) -> String {
        parameterPath(forCheckpointKey: key) ?? key
    }

    /// Writes every parameter as it is now, dtype included, in the model's key order (Diffusers'
    /// `save_pretrained` weights; sharded above `maxShardSize`). A layerwise-cast model saves
    /// its storage dtype, which a later `load(from:dtype: nil)` maps as it is.
    @discardableResult
    public func saveWeights(to folder: String, maxShardSize: Int = CheckpointWriter.defaultMaxShardSize,
                            config: [UInt8]? = nil) throws -> SavedCheckpoint {
        let tensors = try namedParameters().map { (name: $0.path, tensor: try $0.parameter.tensor($0.path)) }
        return try CheckpointWriter.save(tensors, to: folder, maxShardSize: maxShardSize, config: config)
    }

    /// Lets the pages of every weight still mapped from its checkpoint go (read again from the
    /// file when next used), with their derived packed copies: a pipeline calls it when a
    /// phase that needs the model ends, so that no phase holds another phase's weights.
    /// Owned weights (converted, or on an accelerator) are untouched.
    public func releaseMappedWeightPages() {
        for (_, slot) in namedParameters() where slot.value?.storage.isMapped == true {
            slot.value?.storage.releaseResidentPages()
        }
    }

    /// Maps the pages of every weight still mapped from its checkpoint into the process at once
    /// (`Storage.populateResidentPages`): a phase about to use all of a model's weights reads
    /// them in one call per tensor instead of faulting them in page by page.
    public func populateMappedWeightPages() {
        for (_, slot) in namedParameters() where slot.value?.storage.isMapped == true {
            slot.value?.storage.populateResidentPages()
        }
    }

    /// Moves every loaded parameter to `device` (real copies; already-there ones stay).
    public func moveParameters(to device: Device) throws {
        for (_, slot) in namedParameters() { slot.value = try slot.value.map { try $0.to(device) } }
    }

    /// Casts every loaded floating-point parameter to `dtype` (owned copies).
    public func convert(to dtype: DType) throws {
        for (_, slot) in namedParameters() {
            if let value = slot.value, value.dtype.isFloatingPoint, value.dtype != dtype { slot.value = try value.to(dtype) }
        }
    }

    private func place(_ tensor: Tensor, dtype: DType?, device: Device) throws -> Tensor {
        var t = tensor
        if let dtype, t.dtype != dtype, t.dtype.isFloatingPoint {
            t = try t.to(dtype)
            // The file's pages were read once for the copy: let them go, so that loading in
            // another dtype peaks at the copies, not the copies plus the whole checkpoint.
            tensor.storage.releaseResidentPages()
        }
        if t.device != device { t = try t.to(device) }
        return t
    }

    /// What the key check needs of a checkpoint tensor: its name in the file, shape and dtype.
    struct CheckpointEntry {
        let name: String
        let shape: [Int]
        let dtype: String
        let isFloatingPoint: Bool
        let file: String?
    }

    /// Compares the checkpoint's keys and shapes with the parameter slots, then checks that
    /// every tensor filling a slot is floating point: a BOOL or integer tensor would otherwise
    /// be kept as it is (only floats are cast) and compute as 0/1 or integer weights.
    func checkKeys(against entries: [String: CheckpointEntry]) throws {
        let slots = namedParameters()
        let ignored = ignoredKeys()
        var missing: [String] = [], mismatched: [String] = []
        for (path, slot) in slots {
            guard let entry = entries[path] else { missing.append(path); continue }
            if entry.shape != slot.shape { mismatched.append("\(path): checkpoint \(entry.shape), model \(slot.shape)") }
        }
        let known = Set(slots.map(\.path))
        let unexpected = entries.keys.filter { !known.contains($0) && !ignored.contains($0) }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty || !mismatched.isEmpty {
            throw ModuleError.checkpointMismatch(missing: missing, unexpected: unexpected, shapeMismatches: mismatched)
        }
        for (path, _) in slots {
            guard let entry = entries[path], !entry.isFloatingPoint else { continue }
            throw ModuleError.nonFloatingWeight(tensor: entry.name, dtype: entry.dtype, file: entry.file)
        }
    }

    private func ignoredKeys() -> Set<String> {
        var keys = Set<String>()
        for (path, module) in namedModules() {
            let prefix = path.isEmpty ? "" : path + "."
            for key in module.ignoredCheckpointKeys { keys.insert(prefix + key) }
        }
        return keys
    }
}
