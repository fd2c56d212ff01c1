import ArgumentParser
import Diffusers
import Foundation

/// `diffuse inspect PATH [--json]`
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors file, a sharded index, a model folder or a pipeline folder.")

    @Argument(help: "A .safetensors file, a *.index.json, a model folder or a pipeline folder.")
    var path: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Weights variant to read in a model folder (fp16 for diffusion_pytorch_model.fp16.safetensors).")
    var variant: String?

    func run() throws {
        guard let entry = FileKind.of(path) else { throw FileError.notFound(path: path) }
        if entry == .folder {
            if FileKind.of(path + "/model_index.json") != nil {
                let report = try PipelineReport(folder: path)
                emit(json ? JSONWriter.render(report.json, style: .python(indent: 2)) : report.text)
            } else {
                let report = try WeightsReport(modelFolder: path, variant: variant)
                emit(json ? JSONWriter.render(report.json, style: .python(indent: 2)) : report.text())
            }
            return
        }
        let kind = path.hasSuffix(".json") ? "index" : "safetensors"
        let report = try WeightsReport(kind: kind, path: path, checkpoint: Checkpoint(file: path))
        emit(json ? JSONWriter.render(report.json, style: .python(indent: 2)) : report.text())
    }

    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
