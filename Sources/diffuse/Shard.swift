import ArgumentParser
import Diffusers
import Foundation

/// `diffuse shard MODEL_DIR --max-shard-size 500MB --out DIR [--variant fp16]`
struct Shard: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-save a model folder's weights split into shards, as Diffusers' save_pretrained does.")

    @Argument(help: "The model folder to read (config.json and weights).")
    var modelDir: String

    @Option(parsing: .unconditional, help: "Largest shard, as huggingface_hub parses it: 500MB, 5GB, 200KB (decimal units), or bytes.")
    var maxShardSize = "10GB"

    @Option(help: "Folder to write (created if needed).")
    var out: String

    @Option(help: "Weights variant to read, and to name the output with (fp16).")
    var variant: String?

    func run() throws {
        let maxBytes = try ByteSize.parse(maxShardSize)
        guard maxBytes > 0 else {
            throw CheckpointError.invalidSize(message: "--max-shard-size must be positive, got '\(maxShardSize)'")
        }
        let checkpoint = try Checkpoint(folder: modelDir, variant: variant)
        var tensors: [(name: String, tensor: Tensor)] = []
        for file in checkpoint.files {
            let safetensors = try SafeTensorsFile(path: checkpoint.folder + "/" + file)
            for entry in safetensors.entries { tensors.append((entry.name, try safetensors.tensor(named: entry.name))) }
        }
        let configPath = modelDir + "/config.json"
        var config: [UInt8]?
        if FileManager.default.fileExists(atPath: configPath) {
            // A malformed config is refused before anything is written.
            if let order = try parameterOrder(ModelConfig(path: configPath)) { tensors = ordered(tensors, by: order) }
            config = FileManager.default.contents(atPath: configPath).map(Array.init)
        }
        let saved = try CheckpointWriter.save(tensors, to: out, maxShardSize: maxBytes, variant: variant, config: config)
        var lines: [String] = []
        for (file, names) in zip(saved.files, saved.plan.shards) {
            lines.append("\(file)  \(names.count) tensors")
        }
        if let index = saved.indexFile { lines.append("\(index)  total_size \(saved.plan.totalSize)") }
        for name in saved.removed { lines.append("removed stale \(name)") }
        lines.append("wrote \(saved.files.count) weight file(s) with \(tensors.count) tensors to \(out)")
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Diffusers shards in the model's `state_dict()` order, which a safetensors file does not
    /// record (its header is sorted): for a model class this version builds (`_class_name`, or
    /// transformers' `architectures`), the order of the model built from the config; nil for
    /// another class, which then keeps the files' order.
    private func parameterOrder(_ config: ModelConfig) throws -> [String]? {
        let architecture = config.contains("architectures") ? try config.strings("architectures").first : nil
        guard let className = config.className ?? architecture,
              let model = try ComponentRegistry.standard.unloadedModel(className: className, folder: modelDir) else { return nil }
        return model.namedParameters().map(\.path)
    }

    /// `tensors` in `order`, then those the order does not name in their own order.
    private func ordered(_ tensors: [(name: String, tensor: Tensor)], by order: [String]) -> [(name: String, tensor: Tensor)] {
        let rank = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return tensors.enumerated().sorted { a, b in
            let (ra, rb) = (rank[a.element.name] ?? order.count + a.offset, rank[b.element.name] ?? order.count + b.offset)
            return ra < rb
        }.map(\.element)
    }
}
