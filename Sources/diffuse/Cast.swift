import ArgumentParser
import Diffusers
import Foundation

/// `diffuse cast MODEL_DIR --storage-dtype f8e4m3 --out DIR`
struct Cast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-save a UNet or VAE folder with the weights layerwise casting stores (Linear/Conv/Embedding, Diffusers' skip patterns honoured) in a storage dtype, so that runs with that --storage-dtype map them as they are.")

    @Argument(help: "The model folder to read (config.json naming UNet2DConditionModel or AutoencoderKL, and its weights).")
    var modelDir: String

    @Option(help: "f8e4m3, f8e5m2, bf16 or f16.")
    var storageDtype: String

    @Option(help: "Folder to write (created if needed; not the model folder itself).")
    var out: String

    @Option(parsing: .unconditional, help: "Largest weight file, as huggingface_hub parses it (500MB, 5GB), or bytes.")
    var maxShardSize = "10GB"

    func run() throws {
        guard let storage = DType(name: storageDtype), [.f8e4m3fn, .f8e5m2, .bf16, .f16].contains(storage) else {
            throw ValidationError("--storage-dtype must be f8e4m3, f8e5m2, bf16 or f16, not \(storageDtype)")
        }
        let maxBytes = try ByteSize.parse(maxShardSize)
        guard maxBytes > 0 else { throw ValidationError("--max-shard-size must be positive, not \(maxShardSize)") }
        let source = URL(fileURLWithPath: modelDir).standardizedFileURL.resolvingSymlinksInPath().path
        let target = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath().path
        guard source != target else { throw ValidationError("--out must be another folder than the model folder \(modelDir)") }

        let configPath = modelDir + "/config.json"
        let config = try ModelConfig(path: configPath)
        let model: Module
        switch config.className {
        case "UNet2DConditionModel": model = UNet2DConditionModel(try UNet2DConditionConfig(config))
        case "AutoencoderKL": model = AutoencoderKL(try AutoencoderKLConfig(config))
        default:
            throw ValidationError("diffuse cast reads UNet2DConditionModel and AutoencoderKL folders; \(configPath) names \(config.className ?? "no _class_name")")
        }
        // Mapped as stored; the cast layers become owned copies in the storage dtype.
        try model.load(from: Checkpoint(folder: modelDir))
        try model.enableLayerwiseCasting(storage: storage, compute: .f32)
        let saved = try model.saveWeights(to: out, maxShardSize: maxBytes, config: FileManager.default.contents(atPath: configPath).map(Array.init))
        let cast = model.namedParameters().filter { $0.parameter.value?.dtype == storage }.count
        print("wrote \(saved.files.count) weight file(s) to \(out): \(cast) of \(model.namedParameters().count) tensors in \(storage)")
    }
}
