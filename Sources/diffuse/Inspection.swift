import Diffusers
import Foundation

/// What `diffuse inspect` reports about a set of weights (one file, an index, or a model
/// folder).
struct WeightsReport {
    struct Row {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let bytes: Int
        let file: String
    }

    let kind: String
    let path: String
    var className: String?
    var variant: String?
    var files: [String] = []
    var indexFile: String?
    var rows: [Row] = []

    var tensorCount: Int { rows.count }
    var parameterCount: Int { rows.reduce(0) { $0 + $1.shape.reduce(1, *) } }
    var byteCount: Int { rows.reduce(0) { $0 + $1.bytes } }

    /// Reads the headers of `checkpoint`'s files (no tensor data is touched).
    init(kind: String, path: String, checkpoint: Checkpoint) throws {
        self.kind = kind
        self.path = path
        variant = checkpoint.variant
        files = checkpoint.files
        if case .sharded(let index) = checkpoint.layout {
            indexFile = URL(fileURLWithPath: index.path).lastPathComponent
        }
        for (file, header) in try checkpoint.headers() {
            rows += header.entries.map { Row(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: $0.byteCount, file: file) }
        }
    }

    /// A model folder: `config.json` (optional) and its weights. Without `variant`, a
    /// folder holding only one variant's weights is read as that variant.
    init(modelFolder folder: String, variant: String?) throws {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(folder: folder, variant: variant)
        } catch CheckpointError.noWeights(let f, let tried) where variant == nil {
            let variants = Checkpoint.availableVariants(in: folder)
            guard variants.count == 1 else { throw CheckpointError.noWeights(folder: f, tried: tried) }
            checkpoint = try Checkpoint(folder: folder, variant: variants[0])
        }
        try self.init(kind: "model", path: folder, checkpoint: checkpoint)
        let configPath = folder + "/config.json"
        if FileManager.default.fileExists(atPath: configPath) {
            className = try ModelConfig(path: configPath).className
        }
    }

    var totalsJSON: JSONValue {
        .object([("tensors", .number(String(tensorCount))), ("parameters", .number(String(parameterCount))),
                 ("bytes", .number(String(byteCount)))])
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("kind", .string(kind)), ("path", .string(path))]
        if let className { members.append(("class_name", .string(className))) }
        if let variant { members.append(("variant", .string(variant))) }
        members.append(("files", .array(files.map { .string($0) })))
        if let indexFile { members.append(("index", .string(indexFile))) }
        members.append(("tensors", .array(rows.map { row in
            .object([("name", .string(row.name)), ("dtype", .string(row.dtype.rawValue)),
                     ("shape", .array(row.shape.map { .number(String($0)) })),
                     ("bytes", .number(String(row.bytes))), ("file", .string(row.file))])
        })))
        members.append(("totals", totalsJSON))
        return .object(members)
    }

    func text(indent: String = "") -> String {
        var lines: [String] = []
        var heading = "\(indent)\(kind) \(path)"
        if let className { heading += "  class: \(className)" }
        if let variant { heading += "  variant: \(variant)" }
        lines.append(heading)
        if let indexFile { lines.append("\(indent)index: \(indexFile)") }
        lines.append("\(indent)files: \(files.joined(separator: ", "))")
        let nameWidth = min(rows.map(\.name.count).max() ?? 4, 80)
        for row in rows {
            let shape = "[" + row.shape.map { String($0) }.joined(separator: ", ") + "]"
            lines.append("\(indent)  \(pad(row.name, nameWidth))  \(pad(row.dtype.rawValue, 11))  \(pad(shape, 18))  \(row.bytes)")
        }
        lines.append("\(indent)tensors: \(tensorCount)  parameters: \(parameterCount)  bytes: \(byteCount) (\(formatBytes(byteCount)))")
        return lines.joined(separator: "\n")
    }
}

/// `text` left-aligned in a column of `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// `diffuse inspect` of a pipeline folder: every component with weights.
struct PipelineReport {
    let path: String
    let index: PipelineIndex
    /// Per component, its weights (nil for components without any, such as tokenizers).
    var components: [(component: PipelineIndex.Component, weights: WeightsReport?)] = []

    init(folder: String) throws {
        path = folder
        index = try PipelineIndex(path: folder + "/model_index.json")
        for component in index.components {
            let sub = folder + "/" + component.name
            // A component the index names must be there: a pipeline without it cannot load.
            guard FileKind.of(sub) == .folder else { throw PipelineError.missingComponent(folder: folder, component: component.name) }
            var weights: WeightsReport?
            do {
                weights = try WeightsReport(modelFolder: sub, variant: nil)
            } catch CheckpointError.noWeights {
                weights = nil
            }
            components.append((component, weights))
        }
    }

    var tensorCount: Int { components.reduce(0) { $0 + ($1.weights?.tensorCount ?? 0) } }
    var parameterCount: Int { components.reduce(0) { $0 + ($1.weights?.parameterCount ?? 0) } }
    var byteCount: Int { components.reduce(0) { $0 + ($1.weights?.byteCount ?? 0) } }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("kind", .string("pipeline")), ("path", .string(path))]
        if let className = index.className { members.append(("class_name", .string(className))) }
        members.append(("components", .object(components.map { entry in
            var c: [(key: String, value: JSONValue)] = [("library", .string(entry.component.library)),
                                                        ("class", .string(entry.component.className))]
            c.append(("weights", entry.weights?.json ?? .null))
            return (entry.component.name, .object(c))
        })))
        members.append(("totals", .object([("tensors", .number(String(tensorCount))),
                                           ("parameters", .number(String(parameterCount))),
                                           ("bytes", .number(String(byteCount)))])))
        return .object(members)
    }

    var text: String {
        var lines = ["pipeline \(path)" + (index.className.map { "  class: \($0)" } ?? "")]
        for (component, weights) in components {
            lines.append("component \(component.name): \(component.library).\(component.className)")
            if let weights { lines.append(weights.text(indent: "  ")) } else { lines.append("  (no weights)") }
        }
        lines.append("tensors: \(tensorCount)  parameters: \(parameterCount)  bytes: \(byteCount) (\(formatBytes(byteCount)))")
        return lines.joined(separator: "\n")
    }
}
