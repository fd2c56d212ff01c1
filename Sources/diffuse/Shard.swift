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
        // Key order: the files' data order (a safetensors file does not record the model's
        // state-dict order, which is what Diffusers shards by).
        var tensors: [(name: String, tensor: Tensor)] = []
        for file in checkpoint.files {
            let safetensors = try SafeTensorsFile(path: checkpoint.folder + "/" + file)
            for entry in safetensors.entries { tensors.append((entry.name, try safetensors.tensor(named: entry.name))) }
        }
        let configPath = modelDir + "/config.json"
        var config: [UInt8]?
        if FileManager.default.fileExists(atPath: configPath) {
            _ = try ModelConfig(path: configPath)  // reject a malformed config before writing anything
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
}
